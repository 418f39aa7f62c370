// @ts-check
/*
 * h3-js's browser build, served by the hub from node_modules under /vendor/
 * (cloud-sync/http/web-assets.ts), with its own types. The pages work out H3
 * cells in the browser, so a resident's position never leaves the device.
 */
// @ts-ignore: a URL the hub serves, not a path on disk; typed below from the h3-js package
import * as h3 from '/vendor/h3-js/h3-js.es.js';

/** @type {typeof import('h3-js').latLngToCell} */
export const latLngToCell = h3.latLngToCell;
/** @type {typeof import('h3-js').cellToParent} */
export const cellToParent = h3.cellToParent;
