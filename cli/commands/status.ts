import type { Command } from 'commander';
import type { GatewayStatus } from '../../broker/contract/index.js';
import { getFromHub, hubClientOptions, type HubClientOptions } from '../hub-client.js';

export function registerStatus(program: Command): void {
  hubClientOptions(program.command('status').description('show every gateway: online or not, each transport, port and unit, each device and what is active'))
    .option('--json', 'print JSON')
    .action(async (o: HubClientOptions & { json?: boolean }) => {
      const { gateways } = await getFromHub<{ gateways: GatewayStatus[] }>(o, '/api/v1/gateways');
      if (o.json) {
        process.stdout.write(`${JSON.stringify(gateways, null, 2)}\n`);
        return;
      }
      if (gateways.length === 0) {
        process.stdout.write('no gateway has reported yet\n');
        return;
      }
      process.stdout.write(gateways.map((g) => renderGateway(g, Date.now())).join('\n'));
    });
}

export function renderGateway(g: GatewayStatus, now: number): string {
  const out: string[] = [];
  const h = g.health;
  out.push(`gateway ${g.gateway} (site ${g.site}): ${g.state.toUpperCase()} since ${new Date(g.since).toISOString()}${h ? `, health ${ago(h.at, now)}` : ''}`);
  if (!h) return `${out.join('\n')}\n`;
  const rows: string[][] = [['transport / port', 'device', 'state', 'last value', 'errors']];
  for (const a of h.adapters) {
    rows.push([a.kind, '', a.connected ? 'connected' : 'NOT CONNECTED', ago(a.lastValueAt, now), counts(a.errors)]);
    for (const p of a.ports ?? []) {
      rows.push([`  ${p.port}`, p.device ?? '', p.state + (p.backoffMs ? ` (retry ${Math.round(p.backoffMs / 1000)} s)` : ''), ago(p.lastValueAt, now), counts(p.errors)]);
    }
  }
  out.push(table(rows));
  for (const a of h.adapters) {
    for (const p of a.ports ?? []) {
      if (p.lastUnrecognized) out.push(`  ${p.device ?? p.port}: ${p.errors.unrecognized ?? 0} unrecognized line(s), the last ${ago(p.lastUnrecognized.at, now)}: ${JSON.stringify(p.lastUnrecognized.line)}`);
    }
  }
  const devices = [['device', 'profile', 'last heard', 'supervision']];
  for (const d of h.devices ?? []) devices.push([d.id, d.profile, ago(d.lastSeen, now), d.commLost ? 'COMMUNICATION LOST' : 'ok']);
  out.push(table(devices));
  if (h.unknownDevices?.length) {
    out.push('heard but not configured (add them to gateway.devices, with the profile of their model):');
    const heard = [['topic', 'messages', 'last heard', 'config entry']];
    for (const u of h.unknownDevices) heard.push([u.topic, String(u.messages), ago(u.lastHeard, now), configEntry(u)]);
    out.push(table(heard));
  }
  out.push(h.activeConditions.length ? `active: ${h.activeConditions.join(', ')}` : 'active: none');
  return `${out.join('\n')}\n`;
}

type Heard = NonNullable<NonNullable<GatewayStatus['health']>['unknownDevices']>[number];

/** The line a person adds to gateway.devices for a device heard but not configured. */
function configEntry(u: Heard): string {
  if (u.device) return `- { id: ${u.device}, profile: <profile> }`;
  if (u.bridge && u.name) {
    const id = u.name.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64) || 'device';
    const name = /^[A-Za-z0-9_.-]+$/.test(u.name) ? u.name : JSON.stringify(u.name);
    return `- { id: ${id}, profile: <profile>, bridge: ${u.bridge}${name === id ? '' : `, name: ${name}`} }`;
  }
  return `- { id: <id>, profile: <profile>, topic: ${JSON.stringify(u.topic)} }`;
}

function ago(t: number | null, now: number): string {
  if (t === null) return 'never';
  const s = Math.max(0, Math.round((now - t) / 1000));
  return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
}

function counts(c: Record<string, number>): string {
  const parts = Object.entries(c)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k}=${v}`);
  return parts.length ? parts.join(' ') : '-';
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => `  ${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}`).join('\n');
}
