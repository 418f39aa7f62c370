import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { topics, type DispatchMessage } from '../../broker/contract/index.js';
import { alarmEvent } from '../helpers/alarm-events.js';
import { addCredential, runCosafe, startCosafe } from '../helpers/cosafe-cli.js';
import { freePort, waitUntil, type Spawned } from '../helpers/processes.js';
import { assertValidCap } from '../helpers/xmllint.js';
import { FireDepartmentReceiver } from '../simulators/fire-department.js';

/**
 * A hub killed with SIGKILL while an alarm waits for its acknowledgement
 * escalates it at the due time it had stored, not a full delay after it comes
 * back: `cosafe hub` in its own process, the site registered with `cosafe sites`,
 * a real webhook receiver, and the alarm's journal read back over the API.
 */
const ACK_TIMEOUT_S = 8;
const secret = `whsec_${randomBytes(32).toString('base64')}`;
const running: Spawned[] = [];
let fd: FireDepartmentReceiver;

afterAll(async () => {
  for (const p of running) await p.stop('SIGKILL');
  await fd?.stop();
});

describe('escalation across a SIGKILL of the hub', () => {
  it('escalates an unacknowledged alarm at its stored due time after the restart', async () => {
    fd = await new FireDepartmentReceiver({ secret }).start();
    const [mqttPort, httpPort] = [await freePort(), await freePort()];
    const dir = mkdtempSync(join(tmpdir(), 'cosafe-e2e-esc-'));
    const configFile = join(dir, 'cosafe.yaml');
    writeFileSync(
      configFile,
      stringify({
        dataDir: join(dir, 'state'),
        broker: { host: '127.0.0.1', port: mqttPort },
        http: { port: httpPort },
        cloudSync: {
          fireDepartments: [{ id: 'fd-north', district: 'north', url: fd.url, secret }],
          alarms: { districts: { north: { ackTimeoutSeconds: ACK_TIMEOUT_S } } },
        },
      }),
    );
    const api = `http://127.0.0.1:${httpPort}`;
    const site = await runCosafe(['sites', 'add', '--id', 'bakery-12', '--name', 'Bakery', '--address', 'Main St 1', '--lat', '52.5', '--lon', '13.4', '--district', 'north', '-c', configFile]);
    expect(site.code, site.stderr).toBe(0);
    const gateway = await addCredential(configFile, '--role', 'gateway', '--site', 'bakery-12', '--gateway', 'gw-1', '--district', 'north');
    const admin = await addCredential(configFile, '--role', 'admin', '--id', 'ops');
    const auth = { authorization: `Basic ${Buffer.from(`${admin.username}:${admin.password}`).toString('base64')}` };
    const startHub = async () => {
      const hub = startCosafe(['hub', '--config', configFile]);
      running.push(hub);
      await waitUntil('the hub to answer', async () => (await fetch(`${api}/health`).catch(() => undefined))?.status !== undefined, 30_000);
      return hub;
    };
    const journal = async (id: string) =>
      ((await (await fetch(`${api}/api/v1/alarms/${id}`, { headers: auth })).json()) as { journal: { kind: string; at: number; detail: Record<string, unknown> }[] }).journal;

    const first = await startHub();
    const event = alarmEvent({ site: 'bakery-12', gateway: 'gw-1' });
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { ...gateway, reconnectPeriod: 0 });
    await client.publishAsync(topics.events('bakery-12', 'gw-1'), JSON.stringify(event), { qos: 1 });
    await client.endAsync();
    const alert = (await fd.waitFor((a) => a.body.data.eventId === event.eventId, 20_000)).body.data as unknown as DispatchMessage;
    await assertValidCap(alert.cap);
    // Killed once the delivery is journaled: its acknowledgement time runs from there.
    let deliveredAt = 0;
    await waitUntil('the delivery to be journaled', async () => {
      deliveredAt = (await journal(alert.alarmId)).find((j) => j.kind === 'delivered')?.at ?? 0;
      return deliveredAt > 0;
    });
    await first.stop('SIGKILL');

    await startHub();
    const update = await fd.waitFor((a) => a.body.data.alarmId === alert.alarmId && a.body.data.escalation === 1, 60_000);
    const m = update.body.data as unknown as DispatchMessage;
    expect(m.msgType).toBe('Update');
    await assertValidCap(m.cap);
    const escalated = (await journal(alert.alarmId)).find((j) => j.kind === 'escalated')!;
    // The due time is the one stored before the kill, not one made up at the restart.
    expect(escalated.detail).toMatchObject({ step: 1, dueAt: deliveredAt + ACK_TIMEOUT_S * 1000 });
    expect(escalated.at).toBeGreaterThanOrEqual(deliveredAt + ACK_TIMEOUT_S * 1000);
  });
});
