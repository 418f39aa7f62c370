import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface ReceivedAlarm {
  /** The verified, parsed body. */
  body: { type: string; timestamp: string; data: Record<string, unknown> & { eventId: string; device: string; class: string; state: string } };
  headers: IncomingHttpHeaders;
  receivedAt: number;
}

export interface FireDepartmentOptions {
  secret: string;
  /** Answer this many requests with HTTP 503 before accepting (to exercise retries). */
  failFirst?: number;
  onAlarm?: (alarm: ReceivedAlarm) => void;
  host?: string;
  port?: number;
}

/**
 * A fire department's alarm receiver: an HTTP endpoint that accepts a webhook
 * only if its Standard Webhooks signature verifies, checked with the
 * `standardwebhooks` package (an implementation cosafe did not write).
 */
export class FireDepartmentReceiver {
  readonly alarms: ReceivedAlarm[] = [];
  rejected = 0;
  failed = 0;
  private server: Server | undefined;
  private readonly webhook: Webhook;
  private waiters: { predicate: (a: ReceivedAlarm) => boolean; resolve: (a: ReceivedAlarm) => void }[] = [];

  constructor(private readonly o: FireDepartmentOptions) {
    this.webhook = new Webhook(o.secret);
  }

  get url(): string {
    const a = this.server?.address() as AddressInfo;
    return `http://127.0.0.1:${a.port}/alarms`;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        if (this.failed < (this.o.failFirst ?? 0)) {
          this.failed++;
          res.writeHead(503).end();
          return;
        }
        let body: ReceivedAlarm['body'];
        try {
          body = this.webhook.verify(raw, req.headers as Record<string, string>) as ReceivedAlarm['body'];
        } catch {
          this.rejected++;
          res.writeHead(401).end('bad signature');
          return;
        }
        const alarm = { body, headers: req.headers, receivedAt: Date.now() };
        this.alarms.push(alarm);
        this.o.onAlarm?.(alarm);
        this.waiters = this.waiters.filter((w) => (w.predicate(alarm) ? (w.resolve(alarm), false) : true));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(this.o.port ?? 0, this.o.host ?? '127.0.0.1', resolve));
    return this;
  }

  /** Resolves with the first alarm (already received or still to come) that matches. */
  waitFor(predicate: (a: ReceivedAlarm) => boolean, timeoutMs = 10_000): Promise<ReceivedAlarm> {
    const found = this.alarms.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching alarm within ${timeoutMs} ms (got ${this.alarms.length})`)), timeoutMs);
      this.waiters.push({ predicate, resolve: (a) => (clearTimeout(timer), resolve(a)) });
    });
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
