/** Retry delays of a delivery: within seconds at first, then every 10 s until it goes through. Never given up. */
const RETRY_DELAYS_MS = [250, 500, 1000, 2000, 4000, 8000, 10_000];

export function retryDelay(attempt: number): number {
  return RETRY_DELAYS_MS[Math.min(Math.max(attempt, 1) - 1, RETRY_DELAYS_MS.length - 1)] ?? 10_000;
}
