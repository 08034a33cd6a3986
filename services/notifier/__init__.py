"""The notifier: notifications delivered beyond the inbox, by webhook and by e-mail."""
