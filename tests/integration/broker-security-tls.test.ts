import mqtt from 'mqtt';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../broker/contract/index.js';
import { connectError, startTestBroker, type TestBroker } from '../helpers/broker.js';
import { login, mosquittoPub, mosquittoSub } from '../helpers/mosquitto.js';
import { makeTestPki, type TestPki } from '../helpers/tls-certs.js';

/**
 * The TLS listener with a CA, a server certificate and client certificates
 * made by openssl for this test; mosquitto clients and mqtt.js as clients.
 */
let t: TestBroker;
let pki: TestPki;
let port: string;

beforeAll(async () => {
  pki = await makeTestPki();
  t = await startTestBroker({
    listeners: {
      tcp: { enabled: false },
      tls: { enabled: true, port: 0, cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, requestClientCert: true },
    },
  });
  port = String(t.broker.listeners.tls!.port);
});

afterAll(async () => {
  await t?.close();
});

describe('TLS listener', () => {
  it('runs only the listeners the config asks for', () => {
    expect(Object.keys(t.broker.listeners)).toEqual(['tls']);
    expect(t.broker.url).toBe('');
  });

  it('takes a password login over TLS, the server verified against the CA', async () => {
    const device = await t.credential({ role: 'device', id: 'site-a.smoke-1', site: 'site-a', device: 'smoke-1' });
    const gateway = await t.credential({ role: 'gateway', id: 'site-a.gw-1', site: 'site-a', gateway: 'gw-1' });
    const sub = await mqtt.connectAsync(`mqtts://localhost:${port}`, { ...gateway, ca: readFileSync(pki.ca), reconnectPeriod: 0 });
    const received = new Promise<string>((resolve) => sub.once('message', (_topic, payload) => resolve(payload.toString())));
    await sub.subscribeAsync(topics.deviceUplink('site-a', 'smoke-1'), { qos: 1 });
    const r = await mosquittoPub(['-p', port, '--cafile', pki.ca, ...login(device), '-t', topics.deviceUplink('site-a', 'smoke-1'), '-q', '1', '-m', 'over tls']);
    expect(r.code, r.stderr).toBe(0);
    expect(await received).toBe('over tls');
    await sub.endAsync();
  });

  it('logs in with a client certificate: the subject CN names the identity, no password', async () => {
    await t.credential({ role: 'device', id: 'site-a.temp-1', site: 'site-a', device: 'temp-1' });
    const cert = await pki.client('site-a.temp-1');
    const ok = await mosquittoPub(['-p', port, '--cafile', pki.ca, '--cert', cert.cert, '--key', cert.key, '-t', topics.deviceUplink('site-a', 'temp-1'), '-q', '1', '-m', 'x']);
    expect(ok.code, ok.stderr).toBe(0);
    // The certificate's identity is held to its ACL like any other.
    const other = await mosquittoPub(['-p', port, '--cafile', pki.ca, '--cert', cert.cert, '--key', cert.key, '-t', topics.deviceUplink('site-a', 'smoke-1'), '-q', '1', '-m', 'x']);
    expect(other.code).not.toBe(0);
    // mqtt.js, and a username that contradicts the certificate.
    const opts = { ca: readFileSync(pki.ca), cert: readFileSync(cert.cert), key: readFileSync(cert.key) };
    const c = await mqtt.connectAsync(`mqtts://127.0.0.1:${port}`, { ...opts, reconnectPeriod: 0 });
    await c.publishAsync(topics.deviceUplink('site-a', 'temp-1'), 'x', { qos: 1 });
    await c.endAsync();
    expect((await connectError(`mqtts://127.0.0.1:${port}`, { ...opts, username: 'site-a.smoke-1', password: 'x' })).code).toBe(5);
  });

  it('refuses a certificate from another CA, and one whose identity is unknown or revoked', async () => {
    await t.credential({ role: 'device', id: 'site-a.door-1', site: 'site-a', device: 'door-1' });
    const rogue = await pki.client('site-a.door-1', { untrusted: true });
    const r = await mosquittoPub(['-p', port, '--cafile', pki.ca, '--cert', rogue.cert, '--key', rogue.key, '-t', topics.deviceUplink('site-a', 'door-1'), '-m', 'x']);
    expect(r.stderr).toContain('not authorised');
    const stranger = await pki.client('nobody-we-know');
    const s = await mosquittoPub(['-p', port, '--cafile', pki.ca, '--cert', stranger.cert, '--key', stranger.key, '-t', 'x', '-m', 'x']);
    expect(s.stderr).toContain('not authorised');
    const valid = await pki.client('site-a.door-1');
    t.store.revoke('site-a.door-1');
    const revoked = await mosquittoPub(['-p', port, '--cafile', pki.ca, '--cert', valid.cert, '--key', valid.key, '-t', topics.deviceUplink('site-a', 'door-1'), '-m', 'x']);
    expect(revoked.stderr).toContain('not authorised');
    expect(t.metrics.get('cosafe_broker_auth_failures_total', { reason: 'certificate-untrusted', listener: 'tls' })).toBe(1);
    expect(t.metrics.get('cosafe_broker_auth_failures_total', { reason: 'unknown-identity', listener: 'tls' })).toBe(1);
    expect(t.metrics.get('cosafe_broker_auth_failures_total', { reason: 'revoked', listener: 'tls' })).toBe(1);
  });

  it('is not reachable without TLS, nor by a client that does not trust the server', async () => {
    const plain = await mosquittoPub(['-p', port, '-u', 'x', '-P', 'x', '-t', 'x', '-m', 'x'], 5000);
    expect(plain.code).not.toBe(0);
    const untrusting = await mosquittoSub(['-p', port, '--cafile', `${pki.dir}/rogue-ca.crt`, '-u', 'x', '-P', 'x', '-t', 'x', '-C', '1', '-W', '3']);
    expect(untrusting.code).not.toBe(0);
    expect(untrusting.stderr).toMatch(/certificate verify failed|TLS|SSL/i);
  });
});
