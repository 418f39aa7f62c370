import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { CredentialStore, credentialStorePath } from '../../broker/auth/credential-store.js';
import type { Identity } from '../../broker/auth/identity.js';
import { topics } from '../../broker/contract/index.js';
import { asOperator, runCosafe, startCosafe } from '../helpers/cosafe-cli.js';
import { threadNice } from '../helpers/threads.js';
import { freePort, waitUntil } from '../helpers/processes.js';

/**
 * The roles in their own processes, as on separate machines: the operator
 * issues credentials on the hub (here straight into its store; hub.test.ts and
 * the integration tests go through `cosafe credentials`), and each part logs in
 * with the ones in its config. Without credentials a part does not start, and
 * says why.
 */
describe('broker, gateway and cloud-sync in their own processes', () => {
  it('log in with the credentials in their configs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cosafe-roles-'));
    const [mqttPort, httpPort] = [await freePort(), await freePort()];
    const brokerUrl = `mqtt://127.0.0.1:${mqttPort}`;
    const file = (name: string, config: object) => {
      const f = join(dir, name);
      writeFileSync(f, stringify(config));
      return f;
    };
    const hubConfig = file('hub.yaml', { dataDir: join(dir, 'hub'), broker: { host: '127.0.0.1', port: mqttPort } });
    const store = CredentialStore.open(credentialStorePath(join(dir, 'hub')));
    const issue = async (identity: Identity) => ({ username: identity.id, password: (await store.add(identity)).secret });
    const gateway = await issue({ role: 'gateway', id: 'site-a.gw-1', site: 'site-a', gateway: 'gw-1', district: 'north' });
    const service = await issue({ role: 'service', id: 'cloud-sync' });
    const admin = await issue({ role: 'admin', id: 'ops' });
    store.close();
    const noCredentials = file('lost.yaml', { dataDir: join(dir, 'lost'), gateway: { id: 'gw-1', site: 'site-a', brokerUrl } });
    const gatewayConfig = file('gw.yaml', { dataDir: join(dir, 'gw'), gateway: { id: 'gw-1', site: 'site-a', brokerUrl, credentials: gateway } });
    const syncConfig = file('sync.yaml', { dataDir: join(dir, 'sync'), http: { port: httpPort }, cloudSync: { brokerUrl, credentials: service } });

    // All at once, as machines come up: the gateway and cloud-sync retry until the broker is there.
    const parts = [startCosafe(['broker', '--config', hubConfig]), startCosafe(['gateway', '--config', gatewayConfig]), startCosafe(['cloud-sync', '--config', syncConfig])];
    try {
      const refused = await runCosafe(['gateway', '--config', noCredentials]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('COSAFE_ERR_CONFIG_INVALID: gateway.credentials is required');
      await waitUntil(
        'cloud-sync to see the gateway online',
        async () => {
          const body = (await (await fetch(`http://127.0.0.1:${httpPort}/api/v1/gateways`, asOperator(join(dir, 'sync')))).json()) as { gateways: { gateway: string; state: string }[] };
          return body.gateways.some((g) => g.gateway === 'gw-1' && g.state === 'online');
        },
        20_000,
        200,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${parts.map((p) => p.output()).join('\n---\n')}`);
      });
      // The broker's telemetry queue and cloud-sync's telemetry lane run on a thread that yields to alarms (telemetryThreadNice, default 10).
      const ours = threadNice().get(process.pid)!;
      for (const part of [parts[0]!, parts[2]!]) {
        const nice = threadNice(part.child.pid!);
        expect(nice.get(part.child.pid!), part.output()).toBe(ours);
        expect([...nice.values()], part.output()).toContain(Math.min(19, ours + 10));
      }
      // The operator's admin login reads the gateway's retained status too.
      const c = await mqtt.connectAsync(brokerUrl, { ...admin, reconnectPeriod: 0 }, false);
      const status = new Promise<string>((resolve) => c.once('message', (_t, p) => resolve(p.toString())));
      await c.subscribeAsync(topics.status('site-a', 'gw-1'));
      expect(JSON.parse(await status)).toMatchObject({ gateway: 'gw-1', site: 'site-a', state: 'online' });
      await c.endAsync();
    } finally {
      for (const p of parts.reverse()) expect(await p.stop('SIGTERM'), p.output()).toBe(0);
    }
  });
});
