import { topics, type DispatchMessage, type SignalClass } from '../../broker/contract/index.js';
import type { AlarmsConfig, FireDepartmentConfig } from '../../core/config.js';
import type { MqttPublish, PendingDelivery, WebhookData } from './delivery-log.js';
import type { WebhookTarget } from './webhook-dispatcher.js';

/** Why an alarm went to every fire department instead of its district's. */
export type FallbackReason = 'unregistered' | 'unattended';

export interface Routing {
  departments: FireDepartmentConfig[];
  fallback?: FallbackReason;
}

/**
 * The fire departments of the config, their channels, and the escalation
 * policy per district: who gets an alarm first, who next, and how long each
 * step waits.
 */
export class Departments {
  private readonly byId: Map<string, FireDepartmentConfig>;

  constructor(
    readonly all: readonly FireDepartmentConfig[],
    private readonly policy: AlarmsConfig,
  ) {
    this.byId = new Map(all.map((d) => [d.id, d]));
  }

  get(id: string): FireDepartmentConfig | undefined {
    return this.byId.get(id);
  }

  /**
   * Who gets an alarm first: the primary departments of its district (and those
   * that serve every district) that take its class. An alarm of an unregistered
   * site, or of a district nobody serves, goes to every primary department that
   * takes its class: never to nobody.
   */
  route(district: string | null, cls: SignalClass): Routing {
    const takers = this.all.filter((d) => d.primary && d.classes.includes(cls));
    if (district === null) return { departments: takers, fallback: 'unregistered' };
    const own = takers.filter((d) => d.district === district || d.district === undefined);
    return own.length ? { departments: own } : { departments: takers, fallback: 'unattended' };
  }

  escalates(cls: SignalClass): boolean {
    return this.policy.escalateClasses.includes(cls);
  }

  /** The departments escalation step `step` (1, 2, ...) adds; the last step repeats. */
  stepTargets(district: string | null, step: number): string[] {
    const steps = this.policy.districts[district ?? '']?.escalation ?? [];
    return steps.length ? steps[Math.min(step, steps.length) - 1]!.notify : [];
  }

  /** How long to wait before escalation step `step` (1, 2, ...), in ms. */
  waitBefore(district: string | null, step: number): number {
    const p = this.policy.districts[district ?? ''];
    const steps = p?.escalation ?? [];
    const s = steps.length ? steps[Math.min(step, steps.length) - 1] : undefined;
    return (s?.afterSeconds ?? p?.ackTimeoutSeconds ?? this.policy.ackTimeoutSeconds) * 1000;
  }

  /** Every webhook channel, by the id its deliveries carry (the department id, then `<id>.2`, ...). */
  webhookTargets(): Map<string, WebhookTarget> {
    const out = new Map<string, WebhookTarget>();
    for (const d of this.all) {
      d.channels.forEach((c, i) => {
        if (c.type !== 'webhook') return;
        const id = webhookTargetId(d.id, d.channels.slice(0, i).filter((x) => x.type === 'webhook').length);
        out.set(id, { department: d.id, url: c.url, secret: c.secret });
      });
    }
    return out;
  }

  /** The deliveries of one dispatch message to the given departments: one per webhook, one per district on MQTT. */
  deliveries(ids: readonly string[], message: DispatchMessage): PendingDelivery[] {
    const out: PendingDelivery[] = [];
    const districts = new Set<string>();
    for (const id of ids) {
      const d = this.byId.get(id);
      if (!d) continue;
      let n = 0;
      for (const c of d.channels) {
        if (c.type === 'webhook') {
          const target = webhookTargetId(d.id, n++);
          out.push({ key: `${target}/${message.messageId}`, channel: 'webhook', department: target, message: message as unknown as WebhookData } satisfies PendingDelivery<WebhookData>);
        } else if (d.district && !districts.has(d.district)) {
          // Every credential of the district reads the same topic: once per district is enough.
          districts.add(d.district);
          const publish: MqttPublish = { topic: topics.dispatchAlarm(d.district, message.site), payload: message };
          out.push({ key: `mqtt:${d.district}/${message.messageId}`, channel: 'mqtt', department: d.id, message: publish });
        }
      }
    }
    return out;
  }
}

function webhookTargetId(department: string, n: number): string {
  return n === 0 ? department : `${department}.${n + 1}`;
}
