import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import mqttPacket from 'mqtt-packet';
import { GuardedConnection, MqttFrameScanner, PacketTooLargeError } from '../../../../broker/limits/frame-guard.js';

const publish = (bytes: number) => mqttPacket.generate({ cmd: 'publish', topic: 't', payload: Buffer.alloc(bytes), qos: 0, dup: false, retain: false });

describe('MQTT frame scanner', () => {
  it('passes packets up to the limit, however the stream is cut', () => {
    const stream = Buffer.concat([publish(10), publish(200), publish(1000), mqttPacket.generate({ cmd: 'pingreq' })]);
    for (const cut of [1, 2, 3, 7, 64, stream.length]) {
      const scanner = new MqttFrameScanner(1100);
      for (let i = 0; i < stream.length; i += cut) expect(scanner.scan(stream.subarray(i, i + cut))).toBeUndefined();
    }
  });

  it('stops at the header of a packet over the limit, before its body arrives', () => {
    const big = publish(5000);
    const scanner = new MqttFrameScanner(4096);
    const err = scanner.scan(big.subarray(0, 3));
    expect(err).toBeInstanceOf(PacketTooLargeError);
    expect((err as PacketTooLargeError).bytes).toBe(big.length);
  });

  it('catches a remaining length longer than 4 bytes [MQTT-2.2.3]', () => {
    expect(new MqttFrameScanner(1 << 20).scan(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]))?.message).toMatch(/remaining length/);
  });
});

describe('guarded connection', () => {
  it('passes reads and writes through, and ends the connection on an oversized packet', async () => {
    const raw = new PassThrough();
    let tooLarge: PacketTooLargeError | undefined;
    const conn = new GuardedConnection(raw, 1024, (e) => (tooLarge = e));
    const read: Buffer[] = [];
    conn.on('data', (c: Buffer) => read.push(c));
    const closed = new Promise<Error | undefined>((resolve) => {
      let error: Error | undefined;
      conn.on('error', (e) => (error = e));
      conn.on('close', () => resolve(error));
    });
    raw.write(publish(100));
    await new Promise((r) => setImmediate(r));
    expect(Buffer.concat(read)).toEqual(publish(100));
    raw.write(publish(2000));
    expect(await closed).toBeInstanceOf(PacketTooLargeError);
    expect(tooLarge?.limit).toBe(1024);
    expect(raw.destroyed).toBe(true);
  });

  it('closes without an error when either side just closes', async () => {
    const raw = new PassThrough();
    const conn = new GuardedConnection(raw, 1024, () => {});
    const errors: Error[] = [];
    conn.on('error', (e) => errors.push(e));
    const closed = new Promise((r) => conn.on('close', r));
    conn.destroy();
    await closed;
    expect(raw.destroyed).toBe(true);
    expect(errors).toEqual([]);
  });
});
