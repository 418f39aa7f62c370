import { connect } from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';

/** An MQTT packet as bytes, built by mqtt-packet (not by the broker's code). */
export function packet(p: Packet): Buffer {
  return mqttPacket.generate(p);
}

export function connectPacket(clientId: string, login?: { username: string; password: string }): Buffer {
  return packet({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean: true,
    clientId,
    keepalive: 0,
    ...(login ? { username: login.username, password: Buffer.from(login.password) } : {}),
  });
}

/**
 * Opens a plain TCP connection, writes `bytes` in one go, and reports whether
 * the broker closed it within `waitMs` (it is closed by us after that). A test
 * that expects 'closed' waits for that event: give it a generous `waitMs`, it
 * is only spent when the broker fails to close.
 */
export function sendRaw(port: number, bytes: Buffer, waitMs = 1000): Promise<'closed' | 'open'> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.resume(); // read and drop whatever the broker answers
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('open');
    }, waitMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve('closed');
    });
    socket.once('connect', () => socket.write(bytes));
  });
}
