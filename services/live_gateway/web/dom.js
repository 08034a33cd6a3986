// A few DOM helpers: elements built without HTML strings (nothing the API sends is ever
// parsed as markup), and keyed lists updated in place, so a delta moves no focus and no
// layout that did not change.

/** `el("li", {class: "row"}, child, "text")`: an element with attributes and children. */
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    element.setAttribute(name, value);
  }
  element.append(...children);
  return element;
}

export function clear(...elements) {
  for (const element of elements) {
    element.replaceChildren();
  }
}

/**
 * Make `container`'s children match `items`, in order: an item's element is made once by
 * `create(item)` and kept (with its focus and its inputs' text) while its key stays; each
 * is brought up to date by `update(element, item)`. An element is moved only when it is out
 * of place.
 */
export function syncList(container, items, keyOf, create, update) {
  const keys = items.map((item) => String(keyOf(item)));
  const wanted = new Set(keys);
  const existing = new Map();
  for (const child of [...container.children]) {
    if (wanted.has(child.dataset.key)) {
      existing.set(child.dataset.key, child);
    } else {
      child.remove();
    }
  }
  items.forEach((item, index) => {
    let element = existing.get(keys[index]);
    if (!element) {
      element = create(item);
      element.dataset.key = keys[index];
    }
    update(element, item);
    const there = container.children[index];
    if (there !== element) {
      container.insertBefore(element, there || null);
    }
  });
}
