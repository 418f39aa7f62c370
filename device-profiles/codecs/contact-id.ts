import type { SignalClass } from '../../core/vocabulary.js';

/**
 * SIA DC-05 Contact ID event codes to signal classes. The code families are
 * 1xx alarms, 2xx supervisory, 3xx trouble, 4xx open/close, 5xx-6xx bypass and
 * test. Alarm codes outside the fire, gas, CO and intrusion families (medical,
 * general alarm) are passed on as supervisory so that a person looks at them;
 * 4xx-6xx are not safety signals and return `undefined`.
 */
export function contactIdClass(code: number): SignalClass | undefined {
  if (code === 113) return 'waterflow'; // 113 Water flow
  if (code >= 110 && code <= 119) return 'fire'; // 110 Fire, 111 Smoke, 114 Heat, 115 Pull station, ...
  if (code === 151) return 'gas'; // 151 Gas detected
  if (code === 162) return 'co'; // 162 Carbon monoxide detected
  if (code >= 120 && code <= 139) return 'intrusion'; // 12x panic, 13x burglary
  if (code >= 100 && code <= 199) return 'supervisory';
  if (code >= 200 && code <= 299) return 'supervisory'; // 200 Fire supervisory, 203 valve tamper, ...
  if (code >= 300 && code <= 399) return 'trouble'; // 301 AC loss, 302 low battery, 37x loop trouble, ...
  return undefined;
}

/** Qualifier: 1 new event or opening, 3 restore or closing, 6 previously reported condition still present. */
export function contactIdState(qualifier: number): 'active' | 'cleared' | undefined {
  if (qualifier === 1 || qualifier === 6) return 'active';
  if (qualifier === 3) return 'cleared';
  return undefined;
}
