"""Personal data in events, encrypted with a key per person that erasure destroys
(crypto-shredding); ``docs/privacy.md`` describes the design and what is built so far.

- :mod:`.keys`: the key store (a table beside the events): get or create, fetch, destroy;
- :mod:`.kms`: who wraps the keys (master keys from the settings, or a KMS);
- :mod:`.cipher`: one text sealed with AES-256-GCM, bound to its centre and person;
- :mod:`.reveal`: sealed texts opened where they leave tutorpulse (answers, frames, exports).
"""

from shared.privacy.cipher import (
    CiphertextError,
    FieldCipher,
    MalformedCiphertext,
    MissingKey,
    TamperedCiphertext,
    is_sealed,
    parse,
    seal,
    unseal,
)
from shared.privacy.keys import (
    DataKey,
    Erased,
    KeyStore,
    PersonErased,
    create_key_table,
    key_store_opener,
    open_key_store,
)
from shared.privacy.kms import (
    KeyWrapper,
    LocalKms,
    PrivacyConfigurationError,
    UnwrapError,
    key_wrapper,
    new_master_key,
)
from shared.privacy.reveal import ERASED, UNREADABLE, Revealer
from shared.privacy.settings import PrivacySettings

__all__ = [
    "ERASED",
    "UNREADABLE",
    "CiphertextError",
    "DataKey",
    "Erased",
    "FieldCipher",
    "KeyStore",
    "KeyWrapper",
    "LocalKms",
    "MalformedCiphertext",
    "MissingKey",
    "PersonErased",
    "PrivacyConfigurationError",
    "PrivacySettings",
    "Revealer",
    "TamperedCiphertext",
    "UnwrapError",
    "create_key_table",
    "is_sealed",
    "key_store_opener",
    "key_wrapper",
    "new_master_key",
    "open_key_store",
    "parse",
    "seal",
    "unseal",
]
