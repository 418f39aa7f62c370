// @ts-check
import { setText } from './dom.js';

/**
 * @typedef {'idle' | 'connecting' | 'live' | 'lost'} ConnectionState
 */

/** What a person reads for each state: plain words first, colour second (base.css). */
const WORDS = {
  idle: 'Not connected yet.',
  connecting: 'Connecting…',
  live: 'Live: new alerts appear here as soon as they are issued.',
  lost: 'Connection lost. Trying again… Alerts shown here may be out of date.',
};

/**
 * The page's connection to the hub, said plainly in a live region (so a
 * screen reader announces a loss), as `data-state` for the stylesheet and for
 * tests. A page that has heard nothing for `silentAfterMs` calls itself lost
 * even if the browser still holds a socket open.
 */
export class ConnectionIndicator {
  /**
   * @param {HTMLElement} node an element with role="status"
   * @param {Partial<Record<ConnectionState, string>>} [words] what each state says on this page
   */
  constructor(node, words = {}) {
    this.node = node;
    this.words = { ...WORDS, ...words };
    /** @type {ConnectionState} */
    this.state = 'idle';
    this.set('idle');
  }

  /**
   * @param {ConnectionState} state
   * @param {string} [detail] added after the state's words
   */
  set(state, detail) {
    this.state = state;
    this.node.dataset.state = state;
    setText(this.node, detail ? `${this.words[state]} ${detail}` : this.words[state]);
  }
}

/**
 * Calls `onSilent` when `touch` has not been called for `ms`: a heartbeat watchdog.
 * @param {number} ms
 * @param {() => void} onSilent
 */
export function watchdog(ms, onSilent) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  return {
    touch() {
      clearTimeout(timer);
      timer = setTimeout(onSilent, ms);
    },
    stop() {
      clearTimeout(timer);
    },
  };
}
