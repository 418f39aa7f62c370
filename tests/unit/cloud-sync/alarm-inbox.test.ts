import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { topics } from '../../../broker/contract/index.js';
import { AlarmInbox } from '../../../cloud-sync/alarm-inbox.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function path(): string {
  const d = mkdtempSync(join(tmpdir(), 'cosafe-inbox-'));
  dirs.push(d);
  return join(d, 'alarm-inbox.db');
}
const events = topics.events('site-a', 'gw-1');
const event = (cls: string, n: number) => Buffer.from(JSON.stringify({ class: cls, n }));

function drain(inbox: AlarmInbox): string[] {
  const out: string[] = [];
  for (let m = inbox.next(); m; m = inbox.next()) {
    const body = m.payload.length ? (JSON.parse(m.payload.toString()) as { class?: string; n?: number }) : {};
    out.push(m.topic === events ? `${body.class}#${body.n}` : 'status');
    inbox.remove(m.id);
  }
  return out;
}

describe('the alarm inbox', () => {
  it('hands out alarms, then supervisory, then trouble, then status, oldest first within each', () => {
    const inbox = new AlarmInbox(path());
    inbox.add(topics.status('site-a', 'gw-1'), Buffer.from('{}'));
    inbox.add(events, event('trouble', 1));
    inbox.add(events, event('trouble', 2));
    inbox.add(events, event('supervisory', 3));
    inbox.add(events, event('fire', 4));
    inbox.add(events, event('trouble', 5));
    inbox.add(events, event('gas', 6));
    expect(drain(inbox)).toEqual(['fire#4', 'gas#6', 'supervisory#3', 'trouble#1', 'trouble#2', 'trouble#5', 'status']);
    inbox.close();
  });

  it('puts an event it cannot read first (the consumer counts and skips it; it never waits behind lesser signals)', () => {
    const inbox = new AlarmInbox(path());
    inbox.add(events, event('trouble', 1));
    inbox.add(events, Buffer.from('not json'));
    expect(inbox.next()?.payload.toString()).toBe('not json');
    inbox.close();
  });

  it('keeps what was not handled through a restart', () => {
    const file = path();
    const first = new AlarmInbox(file);
    first.add(events, event('trouble', 1));
    first.add(events, event('fire', 2));
    first.remove(first.next()!.id);
    first.close();
    const again = new AlarmInbox(file);
    expect(again.count()).toBe(1);
    expect(drain(again)).toEqual(['trouble#1']);
    again.close();
  });
});
