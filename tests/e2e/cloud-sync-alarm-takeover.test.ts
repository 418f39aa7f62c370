import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { Identity } from '../../broker/auth/identity.js';
import { topics, type DispatchMessage } from '../../broker/contract/index.js';
import { partitionOf } from '../../cloud-sync/partitions/partition.js';
import { connectMqttAsync } from '../../core/mqtt-reconnect.js';
import { alarmEvent } from '../helpers/alarm-events.js';
import { asOperator, startCosafe } from '../helpers/cosafe-cli.js';
import { issueCredentials } from '../helpers/credentials.js';
import { registerSites } from '../helpers/sites.js';
import { freePort, waitUntil, type Spawned } from '../helpers/processes.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { assertValidCap } from '../helpers/xmllint.js';
import { FireDepartmentReceiver, type ReceivedAlarm } from '../simulators/fire-department.js';

/**
 * "Escalated until someone acknowledges" holds when a cloud-sync worker dies
 * (README "Cloud-sync workers"), with real processes only: one redis-server,
 * one `cosafe broker` of a cluster, two `cosafe cloud-sync` workers with
 * `cloudSync.partitions` (4 partitions, a lease ttl of 1.5 s), and two fire
 * departments with signed-webhook receivers: the district's primary centre,
 * and a backup centre that only an escalation step tells.
 *
 * An alarm is raised on the worker holding its site's partition, which is
 * SIGKILLed before anyone acknowledges. The survivor takes the partition and
 * the alarm's state with it: the escalation reaches the backup centre, an
 * acknowledgement through the survivor's HTTP API (a fire-department
 * credential) stops it, and the return to normal sends the Cancel. The
 * killed worker, restarted, does not escalate the alarm again from its own
 * stale copy.
 */
const COUNT = 4;
const TTL_MS = 1500;
const ACK_TIMEOUT_S = 20;
const GATEWAY = 'gw-1';
const DISTRICT = 'north';
const secrets = { primary: `whsec_${randomBytes(32).toString('base64')}`, backup: `whsec_${randomBytes(32).toString('base64')}` };
const dir = mkdtempSync(join(tmpdir(), 'cosafe-takeover-'));

/** One site per partition, so that whichever partitions the killed worker holds, one of its sites is known. */
const SITES: string[] = [];
for (let i = 0; SITES.length < COUNT; i++) {
  const site = `site-${i}`;
  if (!SITES.some((s) => partitionOf(s, COUNT) === partitionOf(site, COUNT))) SITES.push(site);
}

let redis: RedisServer;
let primary: FireDepartmentReceiver;
let backup: FireDepartmentReceiver;
const procs: Record<string, Spawned> = {};
const ports = { broker: 0, w1: 0, w2: 0 };
const configs: Record<'w1' | 'w2', string> = { w1: '', w2: '' };
const dataDirs = { broker: join(dir, 'broker'), w1: join(dir, 'w1'), w2: join(dir, 'w2') };
const logins = new Map<string, { username: string; password: string }>();
/** The fire department's login to each worker's HTTP API (each worker has its own credential store). */
const fdLogin: Partial<Record<'w1' | 'w2', { username: string; password: string }>> = {};
const clients: MqttClient[] = [];
const brokerUrl = () => `mqtt://127.0.0.1:${ports.broker}`;

function file(name: string, config: object): string {
  const f = join(dir, name);
  writeFileSync(f, stringify(config));
  return f;
}

function withOutput(...names: string[]) {
  return (err: Error) => {
    throw new Error(`${err.message}\n${names.map((n) => `--- ${n} ---\n${procs[n]?.output().slice(-4000)}`).join('\n')}`);
  };
}

async function startWorker(name: 'w1' | 'w2'): Promise<void> {
  procs[name] = startCosafe(['cloud-sync', '--config', configs[name]]);
  await waitUntil(`${name} healthy`, async () => (await fetch(`http://127.0.0.1:${ports[name]}/health`).catch(() => undefined))?.ok === true, 60_000, 200).catch(withOutput(name, 'broker'));
}

async function metric(name: 'w1' | 'w2', metricName: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${ports[name]}/metrics`, asOperator(dataDirs[name]));
  if (!res.ok) throw new Error(`${name} /metrics: ${res.status}`);
  let sum = 0;
  for (const m of (await res.text()).matchAll(new RegExp(`^${metricName}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) sum += Number(m[1]);
  return sum;
}

async function holders(): Promise<(string | null)[]> {
  return redis.client.mget(...Array.from({ length: COUNT }, (_, k) => `cosafe:cloud-sync:lease:${k}`));
}

/** The fire department's call to a worker's private HTTP API. */
function asFireDepartment(name: 'w1' | 'w2', init: RequestInit = {}): RequestInit {
  const { username, password } = fdLogin[name]!;
  return { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` } };
}

interface JournalRow {
  n: number;
  kind: string;
  actor: string;
  at: number;
  detail: Record<string, unknown>;
}

async function alarmAt(name: 'w1' | 'w2', id: string): Promise<{ status: number; alarm?: { state: string; escalationStep: number; escalationDue: number | null }; journal?: JournalRow[] }> {
  const res = await fetch(`http://127.0.0.1:${ports[name]}/api/v1/alarms/${id}`, asFireDepartment(name));
  if (res.status !== 200) return { status: res.status };
  return { status: 200, ...((await res.json()) as { alarm: { state: string; escalationStep: number; escalationDue: number | null }; journal: JournalRow[] }) };
}

const data = (a: ReceivedAlarm) => a.body.data as unknown as DispatchMessage;

beforeAll(async () => {
  redis = await startRedis({ appendfsync: 'always' });
  primary = await new FireDepartmentReceiver({ secret: secrets.primary }).start();
  backup = await new FireDepartmentReceiver({ secret: secrets.backup }).start();
  for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();
  for (const d of Object.values(dataDirs)) mkdirSync(d, { recursive: true, mode: 0o700 });
  const identities: Identity[] = [...SITES.map((site): Identity => ({ role: 'gateway', id: `${site}.${GATEWAY}`, site, gateway: GATEWAY })), { role: 'service', id: 'cloud-sync' }];
  const issued = await issueCredentials(dataDirs.broker, identities);
  SITES.forEach((s, i) => logins.set(s, issued[i]!));
  const service = issued[SITES.length]!;
  for (const name of ['w1', 'w2'] as const) [fdLogin[name]] = await issueCredentials(dataDirs[name], [{ role: 'fire-department', id: 'fd-north-3', district: DISTRICT }]);
  registerSites(dataDirs.broker, SITES, DISTRICT);
  registerSites(dataDirs.w1, SITES, DISTRICT);
  registerSites(dataDirs.w2, SITES, DISTRICT);
  const brokerConfig = file('broker.yaml', { dataDir: dataDirs.broker, broker: { host: '127.0.0.1', port: ports.broker, cluster: { redisUrl: redis.url, brokerId: 'broker-a', heartbeatMs: 500, livenessMs: 1500 } } });
  for (const name of ['w1', 'w2'] as const) {
    configs[name] = file(`${name}.yaml`, {
      dataDir: dataDirs[name],
      http: { host: '127.0.0.1', port: ports[name] },
      cloudSync: {
        brokerUrl: brokerUrl(),
        credentials: service,
        partitions: { count: COUNT, redisUrl: redis.url, workerId: name, leaseTtlMs: TTL_MS },
        public: { enabled: false },
        agency: { enabled: false },
        fireDepartments: [
          { id: 'fd-north', district: DISTRICT, url: primary.url, secret: secrets.primary },
          { id: 'fd-backup', district: DISTRICT, primary: false, url: backup.url, secret: secrets.backup },
        ],
        // Unacknowledged after 20 s: the backup centre is told, and again every 20 s.
        alarms: { districts: { [DISTRICT]: { ackTimeoutSeconds: ACK_TIMEOUT_S, escalation: [{ notify: ['fd-backup'] }] } } },
      },
    });
  }
  procs.broker = startCosafe(['broker', '--config', brokerConfig]);
  await waitUntil('broker listening', () => {
    if (procs.broker!.child.exitCode !== null) throw new Error('broker exited');
    return /broker listening/.test(procs.broker!.output());
  }, 60_000, 100).catch(withOutput('broker'));
}, 240_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
  await Promise.all(Object.values(procs).map((p) => p.stop('SIGTERM', 10_000)));
  await primary?.stop();
  await backup?.stop();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the alarm state of a partition moves with it when its worker dies', () => {
  it('escalates, takes the acknowledgement and sends the Cancel on the survivor; the killed worker, back, does not escalate again', async () => {
    await startWorker('w1');
    await waitUntil('w1 holding all partitions', async () => (await metric('w1', 'cosafe_sync_partitions_held')) === COUNT, 60_000, 200).catch(withOutput('w1'));
    await startWorker('w2');
    await waitUntil('2 partitions each', async () => (await metric('w1', 'cosafe_sync_partitions_held')) === 2 && (await metric('w2', 'cosafe_sync_partitions_held')) === 2, 60_000, 200).catch(withOutput('w1', 'w2'));

    // An alarm of a site of w2's partitions, raised (and dispatched) by w2.
    const leases = await holders();
    const doomedSite = SITES.find((s) => leases[partitionOf(s, COUNT)] === 'w2')!;
    const gateway = await connectMqttAsync(brokerUrl(), { ...logins.get(doomedSite)!, clientId: `${doomedSite}-${GATEWAY}-test` }, { baseMs: 100, capMs: 1000 });
    clients.push(gateway);
    const raised = alarmEvent({ site: doomedSite, gateway: GATEWAY });
    await gateway.publishAsync(topics.events(doomedSite, GATEWAY), JSON.stringify(raised), { qos: 1 });
    const alert = data(await primary.waitFor((a) => a.body.data.eventId === raised.eventId && data(a).msgType === 'Alert', 60_000));
    await assertValidCap(alert.cap);
    const id = alert.alarmId;
    await waitUntil('the delivery journaled on w2', async () => (await alarmAt('w2', id)).journal?.some((j) => j.kind === 'delivered') === true, 30_000, 100).catch(withOutput('w2'));
    expect(backup.alarms).toHaveLength(0);

    // w2 dies before anyone acknowledged.
    await procs.w2!.stop('SIGKILL');
    await waitUntil('w1 holding all partitions', async () => (await metric('w1', 'cosafe_sync_partitions_held')) === COUNT, 60_000, 200).catch(withOutput('w1'));

    // The escalation goes on from w1: the backup centre gets the Update, signed with its own secret.
    const update = await backup.waitFor((a) => data(a).alarmId === id && data(a).msgType === 'Update', 120_000).catch(withOutput('w1'));
    expect(data(update).escalation).toBeGreaterThanOrEqual(1);
    await assertValidCap(data(update).cap);
    expect(data(update).cap).toContain(alert.messageId);
    const onW1 = await alarmAt('w1', id);
    expect(onW1.status).toBe(200);
    const takeover = onW1.journal!.find((j) => j.kind === 'taken-over' && j.actor === 'w1')!;
    expect(takeover.detail).toMatchObject({ from: 'w2' });
    expect(onW1.journal!.some((j) => j.kind === 'escalated' && j.n > takeover.n)).toBe(true);
    expect(await metric('w1', 'cosafe_sync_alarms_taken_over_total')).toBeGreaterThanOrEqual(1);

    // The fire department acknowledges through w1's HTTP API: the escalation stops.
    const ack = await fetch(`http://127.0.0.1:${ports.w1}/api/v1/alarms/${id}/ack`, asFireDepartment('w1', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ operator: 'Weber' }) }));
    expect(ack.status).toBe(200);
    const acked = (await ack.json()) as { alarm: { state: string; escalationDue: number | null; ack: { by: string } } };
    expect(acked.alarm).toMatchObject({ state: 'active-acknowledged', escalationDue: null, ack: { by: 'fd-north-3' } });
    const updatesAtAck = [...primary.alarms, ...backup.alarms].filter((a) => data(a).alarmId === id && data(a).msgType === 'Update').length;
    const escalationsAtAck = (await alarmAt('w1', id)).journal!.filter((j) => j.kind === 'escalated').length;

    // The return to normal, seen by w1 (the new holder): the Cancel goes to both centres.
    const cleared = alarmEvent({ site: doomedSite, gateway: GATEWAY, state: 'cleared' });
    await gateway.publishAsync(topics.events(doomedSite, GATEWAY), JSON.stringify(cleared), { qos: 1 });
    for (const fd of [primary, backup]) {
      const cancel = data(await fd.waitFor((a) => data(a).alarmId === id && data(a).msgType === 'Cancel', 60_000).catch(withOutput('w1')));
      await assertValidCap(cancel.cap);
      expect(cancel.cap).toContain(alert.messageId);
    }

    // w2 comes back with its data directory, where the alarm is still unacknowledged and long overdue.
    await startWorker('w2');
    await waitUntil('2 partitions each again', async () => (await metric('w1', 'cosafe_sync_partitions_held')) === 2 && (await metric('w2', 'cosafe_sync_partitions_held')) === 2, 60_000, 200).catch(withOutput('w1', 'w2'));
    // It escalated nothing: no escalation counted, no Update after the acknowledgement at either centre.
    expect(await metric('w2', 'cosafe_alarm_escalations_total')).toBe(0);
    expect([...primary.alarms, ...backup.alarms].filter((a) => data(a).alarmId === id && data(a).msgType === 'Update')).toHaveLength(updatesAtAck);
    expect((await alarmAt('w1', id)).journal!.filter((j) => j.kind === 'escalated')).toHaveLength(escalationsAtAck);
    // If it took the partition back, it took w1's newer state with it.
    if ((await holders())[partitionOf(doomedSite, COUNT)] === 'w2') {
      const onW2 = await alarmAt('w2', id);
      expect(onW2.alarm?.state).toBe('normal');
      expect(onW2.journal!.at(-1)).toMatchObject({ kind: 'taken-over', actor: 'w2', detail: { from: 'w1' } });
    }
  }, 600_000);
});
