// @ts-check
/**
 * The one way the pages put data on screen: elements are made with
 * document.createElement and every value is set as text (a Text node, an
 * attribute), never parsed as HTML. A value from a device or a person that
 * holds "<script>" shows as those characters. With the hub's
 * Content-Security-Policy (no inline script), this is defence in depth.
 */

/** @typedef {string | number | null | undefined | false | Node} Child */

/**
 * An element with attributes and children; strings and numbers become text.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string | boolean | undefined>} [attrs]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (/^on/i.test(name)) throw new Error(`el(): event handler attributes are not allowed (${name}); use addEventListener`);
    node.setAttribute(name, value === true ? '' : value);
  }
  append(node, ...children);
  return node;
}

/**
 * Appends children as nodes; strings and numbers as text.
 * @param {Node} parent
 * @param {...Child} children
 */
export function append(parent, ...children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    parent.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
  }
}

/**
 * Sets an element's whole content to one text.
 * @param {Element} node
 * @param {string} value
 */
export function setText(node, value) {
  node.textContent = value;
}

/** @param {Element} node */
export function clear(node) {
  node.replaceChildren();
}

/**
 * The element of `id`, or an error that names it (a page and its script out of step).
 * @template {HTMLElement} [T=HTMLElement]
 * @param {string} id
 * @returns {T}
 */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page has no element #${id}`);
  return /** @type {T} */ (node);
}
