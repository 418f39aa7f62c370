import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { signWebhook } from '../../../cloud-sync/dispatch/standard-webhooks.js';

describe('Standard Webhooks signature', () => {
  const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  const body = '{"type":"alarm.fire.active","data":{"device":"smoke-1"}}';

  it('verifies with the reference implementation', () => {
    const ts = Math.floor(Date.now() / 1000);
    const headers = signWebhook(secret, 'evt_1', ts, body);
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it('does not verify when the body or the secret differ', () => {
    const headers = signWebhook(secret, 'evt_1', Math.floor(Date.now() / 1000), body);
    expect(() => new Webhook(secret).verify(body.replace('smoke-1', 'smoke-2'), headers)).toThrow();
    expect(() => new Webhook('whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB').verify(body, headers)).toThrow();
  });
});
