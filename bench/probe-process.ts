import { monitorEventLoopDelay } from 'node:perf_hooks';
import { FireDepartmentReceiver } from '../tests/simulators/fire-department.js';
import { AlarmProbe, type AlarmSample } from './alarm-probe.js';
import type { FromProbe, ProbeOptions, ToProbe } from './remote-probe.js';

/**
 * The alarm stopwatch in a process of its own (remote-probe.ts): the smoke
 * detector, the observers that split the latency, and the fire department's
 * webhook receiver. In the bench's main process, its own work (reading /proc,
 * scraping /metrics, counting in InfluxDB, the fleet's messages) held its event
 * loop up to 42 ms in the devices phase, and an alarm that came meanwhile was
 * timed late at every point at once (its uplink, its event and its webhook all
 * "arrived" within a millisecond). Here nothing else runs.
 */
// Sampled every 5 ms: finer, its timer would wake the process a thousand times a second and take CPU from what it measures.
const loop = monitorEventLoopDelay({ resolution: 5 });
loop.enable();
let receiver: FireDepartmentReceiver | undefined;
let probe: AlarmProbe | undefined;
/** Samples returned late (no webhook within the timeout) that may still arrive: sent again once they do. */
const pending = new Map<number, AlarmSample>();

const send = (m: FromProbe) => process.send?.(m);

function updates(): { index: number; sample: AlarmSample }[] {
  const out: { index: number; sample: AlarmSample }[] = [];
  for (const [index, sample] of pending) {
    if (sample.ms === undefined) continue;
    out.push({ index, sample });
    pending.delete(index);
  }
  return out;
}

async function healthOf(o: ProbeOptions): Promise<{ activeConditions: string[] }> {
  const res = await fetch(o.gatewayHealth.url, { headers: o.gatewayHealth.headers, signal: AbortSignal.timeout(10_000) });
  return (await res.json()) as { activeConditions: string[] };
}

async function handle(m: ToProbe): Promise<FromProbe | undefined> {
  switch (m.type) {
    case 'receiver':
      receiver = await new FireDepartmentReceiver({ secret: m.secret, onAlarm: (a) => probe?.arrived(a) }).start();
      return { type: 'reply', id: m.id, value: receiver.url };
    case 'start': {
      const o = m.options;
      pending.clear();
      probe = new AlarmProbe({ ...o, isActive: async () => (await healthOf(o)).activeConditions.includes(`${o.device}/smoke`) });
      await probe.start();
      return { type: 'reply', id: m.id, value: true };
    }
    case 'stop':
      await probe?.stop();
      probe = undefined;
      return { type: 'reply', id: m.id, value: true };
    case 'toggle': {
      if (!probe) throw new Error('the probe is not started');
      const sample = await probe.toggle(m.timeoutMs);
      const index = probe.samples.length - 1;
      if (sample.late) pending.set(index, sample);
      return { type: 'sample', id: m.id, index, sample, updates: updates() };
    }
    case 'quiet':
      probe?.publishQuiet();
      return undefined;
    case 'missing': {
      const n = (await probe?.missing(m.graceMs)) ?? 0;
      return { type: 'missing', id: m.id, value: n, updates: updates() };
    }
    case 'rejected':
      return { type: 'reply', id: m.id, value: receiver?.rejected ?? 0 };
    case 'loop': {
      const value = { maxMs: Math.round(loop.max / 1e4) / 100, p99Ms: Math.round(loop.percentile(99) / 1e4) / 100 };
      loop.reset();
      return { type: 'reply', id: m.id, value };
    }
    case 'exit':
      await probe?.stop().catch(() => {});
      await receiver?.stop().catch(() => {});
      process.exit(0);
  }
}

process.on('message', (m: ToProbe) => {
  handle(m).then(
    (reply) => reply && send(reply),
    (err: Error) => 'id' in m && send({ type: 'error', id: m.id, message: err.message }),
  );
});
// The bench gone (killed, or done without saying so): nothing here to keep.
process.on('disconnect', () => process.exit(0));
