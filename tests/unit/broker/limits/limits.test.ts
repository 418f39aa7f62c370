import { afterEach, describe, expect, it, vi } from 'vitest';
import { AddressGuard } from '../../../../broker/limits/address-guard.js';
import { PublishThrottle } from '../../../../broker/limits/publish-throttle.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('publish throttle', () => {
  it('lets a burst through, then holds publishes back at the rate, in order', async () => {
    vi.useFakeTimers({ now: 0 });
    const clock = { now: () => Date.now() };
    const throttle = new PublishThrottle({ rate: 10, burst: 3, maxHeld: 5, clock });
    const released: number[] = [];
    const verdicts = [1, 2, 3, 4, 5, 6].map((n) => throttle.admit(() => released.push(n)));
    expect(verdicts).toEqual(['now', 'now', 'now', 'held', 'held', 'held']);
    await vi.advanceTimersByTimeAsync(100);
    expect(released).toEqual([4]);
    await vi.advanceTimersByTimeAsync(200);
    expect(released).toEqual([4, 5, 6]);
    throttle.stop();
  });

  it('overflows past the most it may hold', () => {
    vi.useFakeTimers({ now: 0 });
    const throttle = new PublishThrottle({ rate: 1, burst: 1, maxHeld: 2, clock: { now: () => Date.now() } });
    expect([0, 1, 2, 3].map(() => throttle.admit(() => {}))).toEqual(['now', 'held', 'held', 'overflow']);
    throttle.stop();
    expect(throttle.heldCount).toBe(0);
  });
});

describe('address guard', () => {
  it('limits attempts per address over a sliding window', () => {
    let now = 0;
    const guard = new AddressGuard({ attempts: 3, authFailures: 2, failedIdentities: 5, windowMs: 60_000, clock: { now: () => now } });
    // Past the limit: told why at CONNECT; past twice the limit: closed.
    expect([1, 2, 3, 4, 5, 6, 7].map(() => guard.admit('10.0.0.1'))).toEqual(['ok', 'ok', 'ok', 'connect-attempts', 'connect-attempts', 'connect-attempts', 'connect-flood']);
    expect(guard.admit('10.0.0.2')).toBe('ok'); // another address is not affected
    now = 60_001;
    expect(guard.admit('10.0.0.1')).toBe('ok');
  });

  it('refuses one identity from one address after too many failed logins, and serves the others behind it', () => {
    let now = 0;
    const guard = new AddressGuard({ attempts: 100, authFailures: 2, failedIdentities: 5, windowMs: 60_000, clock: { now: () => now } });
    guard.authFailed('10.0.0.1', 'site.a');
    expect(guard.admitIdentity('10.0.0.1', 'site.a')).toBe(true);
    guard.authFailed('10.0.0.1', 'site.a');
    expect(guard.admitIdentity('10.0.0.1', 'site.a')).toBe(false);
    // The address itself, the other identities behind it, and the same identity elsewhere are not refused.
    expect(guard.admit('10.0.0.1')).toBe('ok');
    expect(guard.admitIdentity('10.0.0.1', 'site.b')).toBe(true);
    expect(guard.admitIdentity('10.0.0.2', 'site.a')).toBe(true);
    now = 30_000;
    expect(guard.admitIdentity('10.0.0.1', 'site.a')).toBe(false);
    now = 61_000;
    expect(guard.admitIdentity('10.0.0.1', 'site.a')).toBe(true);
  });

  it('refuses an address that fails logins for many identities (spraying), until the window has passed', () => {
    let now = 0;
    const guard = new AddressGuard({ attempts: 100, authFailures: 10, failedIdentities: 3, windowMs: 60_000, clock: { now: () => now } });
    guard.authFailed('10.0.0.1', 'a');
    guard.authFailed('10.0.0.1', 'b');
    expect(guard.admit('10.0.0.1')).toBe('ok');
    expect(guard.refusesAddress('10.0.0.1')).toBe(false);
    guard.authFailed('10.0.0.1', 'c');
    expect(guard.admit('10.0.0.1')).toBe('failed-identities');
    // The HTTP login asks the same without counting an attempt.
    expect(guard.refusesAddress('10.0.0.1')).toBe(true);
    expect(guard.admit('10.0.0.2')).toBe('ok');
    expect(guard.refusesAddress('10.0.0.2')).toBe(false);
    now = 61_000;
    expect(guard.refusesAddress('10.0.0.1')).toBe(false);
    expect(guard.admit('10.0.0.1')).toBe('ok');
  });

  it('forgets addresses whose window is over', () => {
    let now = 0;
    const guard = new AddressGuard({ attempts: 10, authFailures: 10, failedIdentities: 10, windowMs: 1000, clock: { now: () => now } });
    for (let i = 0; i < 100; i++) guard.admit(`10.0.0.${i}`);
    expect(guard.trackedAddresses).toBe(100);
    now = 5000;
    guard.admit('10.0.1.1');
    expect(guard.trackedAddresses).toBe(1);
  });
});
