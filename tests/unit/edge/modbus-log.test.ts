import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadBuiltinProfiles } from '../../../device-profiles/loader.js';
import { createModbusRtuAdapter } from '../../../edge/adapters/modbus-rtu.js';
import { AdapterHarness } from '../../helpers/adapter-harness.js';
import { waitUntil } from '../../helpers/processes.js';

const profile = loadBuiltinProfiles().get('modbus-combustible-gas-detector')!;
let harness: AdapterHarness | undefined;
afterEach(async () => harness?.stop());

describe('Modbus adapter logs', () => {
  it('name the port once per line (a JSON key twice is a log shipper dropping one)', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
    const port = join(mkdtempSync(join(tmpdir(), 'cosafe-modbus-')), 'no-such-tty');
    harness = new AdapterHarness(createModbusRtuAdapter, [{ device: { id: 'gas-1', profile: profile.id, port, unitId: 1 }, profile, unitId: 1 }], { logger });
    await harness.start();
    await waitUntil('the port to be reported as not opening', () => lines.some((l) => l.includes('serial port cannot be opened')), 5000);
    const line = lines.find((l) => l.includes('serial port cannot be opened'))!;
    expect(line.match(/"port":/g)).toHaveLength(1);
    expect(JSON.parse(line)).toMatchObject({ port });
  });
});
