import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { topics } from '../broker/contract/index.js';
import type { FleetParams, FromFleet, ToFleet } from './fleet.js';

/**
 * A share of the bench's MQTT devices in one process (started by fleet.ts):
 * each device is a TCP connection of its own, logs in with its own credential
 * and publishes one JSON reading per message at QoS 1 on its own uplink topic,
 * as a real sensor does. The packets are built and read here by hand
 * (CONNECT through mqtt-packet, PUBLISH and PUBACK are a few fixed bytes), so
 * that a publish costs this process a few microseconds and the generator is
 * never what limits the figures; its CPU is reported with every result.
 * Driven over the IPC channel (fleet.ts: connect, flood, paced, stop, drop).
 */
const params = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as FleetParams;
const send = (m: FromFleet) => {
  if (process.connected) process.send?.(m, undefined, {}, () => {});
};
process.on('disconnect', () => process.exit(3));

/** Epoch ms with sub-millisecond resolution, comparable between processes. */
const now = () => performance.timeOrigin + performance.now();
const cpuMs = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};

interface Device {
  index: number;
  id: string;
  topic: Buffer;
  socket?: Socket;
  connected: boolean;
  /** Bytes of an MQTT packet not yet complete. */
  rest: Buffer | undefined;
  nextId: number;
  inFlight: number;
  /** Flood: messages still to publish. */
  left: number;
  /** Flood: the sequence number of the next reading, which makes its timestamp. */
  k: number;
  onConnack?: (rc: number) => void;
}

const devices: Device[] = params.logins.map((l, index) => ({
  index,
  id: l.device,
  topic: Buffer.from(topics.deviceUplink(params.site, l.device)),
  connected: false,
  rest: undefined,
  nextId: 1,
  inFlight: 0,
  left: 0,
  k: 0,
}));

let published = 0;
let acked = 0;
let failed = 0;
let lastAckAt = 0;
let mode: { kind: 'idle' } | { kind: 'flood'; window: number; t0: number; done: () => void } | { kind: 'paced' } = { kind: 'idle' };

/** A QoS 1 PUBLISH: fixed header, remaining length, topic, packet identifier, payload [MQTT-3.3]. */
function publishPacket(d: Device, payload: string): Buffer {
  const body = Buffer.byteLength(payload);
  const remaining = 2 + d.topic.length + 2 + body;
  const lengthBytes = remaining < 128 ? 1 : remaining < 16_384 ? 2 : 3;
  const buf = Buffer.allocUnsafe(1 + lengthBytes + remaining);
  let o = 0;
  buf[o++] = 0x32;
  for (let x = remaining; ; ) {
    let byte = x % 128;
    x = Math.floor(x / 128);
    if (x > 0) byte |= 0x80;
    buf[o++] = byte;
    if (x === 0) break;
  }
  buf.writeUInt16BE(d.topic.length, o);
  o += 2;
  d.topic.copy(buf, o);
  o += d.topic.length;
  buf.writeUInt16BE(d.nextId, o);
  o += 2;
  buf.write(payload, o);
  d.nextId = d.nextId === 65_535 ? 1 : d.nextId + 1;
  return buf;
}

function publishOne(d: Device, payload: string): void {
  if (!d.socket || !d.connected) {
    failed++;
    return;
  }
  published++;
  d.inFlight++;
  d.socket.write(publishPacket(d, payload));
}

/** CONNACK, PUBACK and PINGRESP are all the broker sends a device that subscribes to nothing. */
function onData(d: Device, chunk: Buffer): void {
  const buf = d.rest ? Buffer.concat([d.rest, chunk]) : chunk;
  d.rest = undefined;
  let o = 0;
  while (o + 2 <= buf.length) {
    const type = buf[o]! >> 4;
    const len = buf[o + 1]!;
    if (o + 2 + len > buf.length) break;
    if (type === 2) d.onConnack?.(buf[o + 3]!);
    else if (type === 4) onPuback(d);
    o += 2 + len;
  }
  if (o < buf.length) d.rest = buf.subarray(o);
}

function onPuback(d: Device): void {
  acked++;
  d.inFlight--;
  lastAckAt = now();
  if (mode.kind === 'flood') {
    floodNext(d, mode);
    if (acked + failed >= published && devices.every((x) => x.left === 0 || !x.connected)) mode.done();
  }
}

function floodNext(d: Device, m: { window: number; t0: number }): void {
  while (d.left > 0 && d.inFlight < m.window && d.connected) {
    d.left--;
    publishOne(d, reading(d, m.t0 + d.k++));
  }
}

/** One reading of a steady temperature (no fire condition trips), stamped with the device's own time. */
function reading(d: Device, ts: number): string {
  return `{"temp":${20 + (d.index % 50) / 10},"ts":${Math.round(ts)}}`;
}

function connectOne(d: Device): Promise<number> {
  const login = params.logins[d.index]!;
  return new Promise((resolve) => {
    const socket = connect(params.port, params.host);
    socket.setNoDelay(true);
    d.socket = socket;
    d.rest = undefined;
    d.inFlight = 0;
    let settled = false;
    const settle = (rc: number) => {
      if (settled) return;
      settled = true;
      d.connected = rc === 0;
      resolve(rc);
    };
    d.onConnack = settle;
    socket.on('data', (c: Buffer) => onData(d, c));
    socket.on('error', () => {});
    socket.on('close', () => {
      d.connected = false;
      // -1: closed before a CONNACK (refused at the TCP accept, or the broker went away).
      settle(-1);
      if (mode.kind === 'flood') {
        failed += d.inFlight + d.left;
        d.inFlight = 0;
        d.left = 0;
        if (acked + failed >= published && devices.every((x) => x.left === 0 || !x.connected)) mode.done();
      }
    });
    socket.once('connect', () =>
      socket.write(
        mqttPacket.generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clean: true,
          clientId: login.username,
          keepalive: 300,
          username: login.username,
          password: Buffer.from(login.password),
        }),
      ),
    );
  });
}

async function connectAll(): Promise<void> {
  const cpu0 = cpuMs();
  const startedAt = now();
  const codes = await Promise.all(devices.map(connectOne));
  const refused: Record<string, number> = {};
  for (const rc of codes) if (rc !== 0) refused[String(rc)] = (refused[String(rc)] ?? 0) + 1;
  send({ type: 'connected', startedAt, lastAt: now(), ok: codes.filter((c) => c === 0).length, refused, cpuMs: cpuMs() - cpu0 });
}

process.on('message', (m: ToFleet) => {
  if (m.type === 'connect') void connectAll();
  else if (m.type === 'flood') {
    const cpu0 = cpuMs();
    const [p0, a0, f0] = [published, acked, failed];
    const firstAt = now();
    const done = () => {
      if (mode.kind !== 'flood') return;
      mode = { kind: 'idle' };
      send({ type: 'flooded', published: published - p0, acked: acked - a0, failed: failed - f0, firstAt, lastAckAt, cpuMs: cpuMs() - cpu0 });
    };
    mode = { kind: 'flood', window: m.window, t0: m.t0, done };
    for (const d of devices) {
      d.left = d.connected ? m.perDevice : 0;
      d.k = 0;
    }
    for (const d of devices) floodNext(d, mode);
    if (published === p0) done();
  } else if (m.type === 'paced') {
    mode = { kind: 'paced' };
    const cpu0 = cpuMs();
    const [p0, a0, f0] = [published, acked, failed];
    const started = performance.now();
    let next = 0;
    // One timer for all: every 5 ms, the devices whose moment in the period has come.
    const timer = setInterval(() => {
      const due = Math.floor(((performance.now() - started) / m.everyMs) * devices.length);
      for (; next < due; next++) {
        const d = devices[next % devices.length]!;
        publishOne(d, reading(d, now()));
      }
    }, 5);
    const stop = (s: ToFleet) => {
      if (s.type !== 'stop') return;
      process.off('message', stop);
      clearInterval(timer);
      const deadline = Date.now() + 10_000;
      const wait = () => {
        if (acked + failed >= published || Date.now() > deadline) {
          mode = { kind: 'idle' };
          send({ type: 'paced-done', published: published - p0, acked: acked - a0, failed: failed - f0, cpuMs: cpuMs() - cpu0 });
        } else setTimeout(wait, 20);
      };
      wait();
    };
    process.on('message', stop);
  } else if (m.type === 'drop') {
    // As a hub restart or a network cut does it: every connection gone at once.
    for (const d of devices) d.socket?.destroy();
    send({ type: 'dropped' });
  }
});
send({ type: 'ready' });
