import { describe, expect, it } from 'vitest';
import { grantsOf, mayPublish, mayReceive, maySubscribe } from '../../../../broker/auth/acl.js';
import { ANONYMOUS_RESIDENT, type Identity } from '../../../../broker/auth/identity.js';
import { subscriptions, topics } from '../../../../broker/contract/index.js';

const gateway: Identity = { role: 'gateway', id: 's1.g1', site: 's1', gateway: 'g1', district: 'north' };
const device: Identity = { role: 'device', id: 's1.d1', site: 's1', device: 'd1' };
const bridge: Identity = { role: 'bridge', id: 's1.zigbee2mqtt', site: 's1', prefix: 'zigbee2mqtt' };
const service: Identity = { role: 'service', id: 'cloud-sync' };
const fireDepartment: Identity = { role: 'fire-department', id: 'fd-north-3', district: 'north' };
const agency: Identity = { role: 'agency', id: 'statistics-office' };
const districtAgency: Identity = { role: 'agency', id: 'north-planning', district: 'north' };
const resident = ANONYMOUS_RESIDENT;
const admin: Identity = { role: 'admin', id: 'ops' };
const owner: Identity = { role: 'owner', id: 'anna', sites: ['s1'] };
const monitor: Identity = { role: 'monitor', id: 'prometheus' };

const EVT = 'evt_0123456789abcdef0123456789abcdef';
const CELL = '871fb4662ffffff';

type Row = [who: string, identity: Identity, topic: string, allowed: boolean];

// Publish: role × topic. Every row that is allowed is also a reason the role exists;
// every denied one is an attack or a mistake the broker must stop.
const publishTable: Row[] = [
  ['gateway', gateway, topics.readings('s1', 'g1'), true],
  ['gateway', gateway, topics.events('s1', 'g1'), true],
  ['gateway', gateway, topics.status('s1', 'g1'), true],
  ['gateway', gateway, topics.readings('s2', 'g1'), false], // another site
  ['gateway', gateway, topics.events('s2', 'g1'), false],
  ['gateway', gateway, topics.readings('s1', 'g2'), false], // another gateway of its site
  ['gateway', gateway, topics.deviceUplink('s1', 'd1'), false], // posing as a device
  ['gateway', gateway, topics.gatewayCommand('s1', 'g1', 'reboot'), false], // commanding itself
  ['gateway', gateway, topics.dispatchAlarm('north', 's1'), false], // dispatching alarms directly
  ['gateway', gateway, topics.publicAlerts(CELL), false],
  ['gateway', gateway, '$SYS/broker/x', false],
  ['device', device, topics.deviceUplink('s1', 'd1'), true],
  ['device', device, topics.deviceUplink('s1', 'd2'), false], // another device
  ['device', device, topics.deviceUplink('s2', 'd1'), false], // same device id, another site
  ['device', device, topics.readings('s1', 'g1'), false], // posing as the gateway
  ['device', device, 'zigbee2mqtt/d1', false],
  ['bridge', bridge, 'zigbee2mqtt/store-sensor', true], // a device of the bridge
  ['bridge', bridge, 'zigbee2mqtt/store-sensor/availability', true], // its availability
  ['bridge', bridge, 'zigbee2mqtt/bridge/state', true], // the bridge's own state (and its last will)
  ['bridge', bridge, 'zigbee2mqtt', true], // `prefix/#` covers the prefix itself [MQTT-4.7.1-2]
  ['bridge', bridge, 'zigbee2mqtt-other/x', false], // a prefix is whole levels
  ['bridge', bridge, 'homeassistant/sensor/x/config', false], // outside its prefix
  ['bridge', bridge, topics.deviceUplink('s1', 'd1'), false], // posing as a contract device
  ['bridge', bridge, topics.readings('s1', 'g1'), false], // posing as the gateway
  ['bridge', bridge, '$SYS/broker/x', false],
  ['service', service, topics.dispatchAlarm('north', 's1'), true],
  ['service', service, topics.agencyFeed('north', 'events'), true],
  ['service', service, topics.publicAlerts(CELL), true],
  ['service', service, topics.readings('s1', 'g1'), false], // posing as a gateway
  ['service', service, topics.dispatchAck('north', EVT), false], // acknowledging for a fire department
  ['service', service, topics.gatewayCommand('s1', 'g1', 'alarm-ack'), true], // tells a gateway its alarm was acknowledged
  ['fire department', fireDepartment, topics.dispatchAck('north', EVT), true],
  ['fire department', fireDepartment, topics.dispatchAck('south', EVT), false], // another district
  ['fire department', fireDepartment, topics.dispatchAlarm('north', 's1'), false],
  ['fire department', fireDepartment, topics.publicAlerts(CELL), false],
  ['agency', agency, topics.agencyFeed('north', 'events'), false], // agencies only read
  ['agency', districtAgency, topics.agencyFeed('north', 'events'), false],
  ['resident', resident, topics.publicAlerts(CELL), false], // residents never publish
  ['resident', resident, 'anything', false],
  ['admin', admin, topics.readings('s1', 'g1'), true],
  ['admin', admin, topics.gatewayCommand('s1', 'g1', 'reboot'), true],
  ['admin', admin, '$SYS/broker/x', false], // the broker's own topics are the broker's [MQTT-4.7.2-1]
  ['admin', admin, 'a/+/c', false], // not a topic name [MQTT-3.3.2-2]
  ['admin', admin, '', false],
];

// Subscribe: role × filter. A filter is allowed only if it cannot reach beyond a grant.
const subscribeTable: Row[] = [
  ['gateway', gateway, subscriptions.gatewayCommands('s1', 'g1'), true],
  ['gateway', gateway, topics.gatewayCommand('s1', 'g1', 'reboot'), true],
  ['gateway', gateway, subscriptions.siteUplinks('s1'), true], // its MQTT adapter reads its site's devices
  ['gateway', gateway, topics.deviceUplink('s1', 'd1'), true],
  ['gateway', gateway, subscriptions.siteUplinks('s2'), false], // another site's devices
  ['gateway', gateway, subscriptions.gatewayCommands('s1', 'g2'), false], // another gateway's commands
  ['gateway', gateway, topics.readings('s1', 'g1'), false],
  ['gateway', gateway, subscriptions.allReadings, false],
  ['gateway', gateway, 'cosafe/v1/sites/s1/#', false], // wider than its grants
  ['gateway', gateway, 'cosafe/v1/sites/+/devices/+/up', false],
  ['gateway', gateway, '#', false],
  ['device', device, topics.deviceUplink('s1', 'd1'), false], // devices only publish
  ['device', device, '#', false],
  ['bridge', bridge, 'zigbee2mqtt/#', true], // zigbee2mqtt reads its requests and set commands
  ['bridge', bridge, 'zigbee2mqtt/+/set', true],
  ['bridge', bridge, '#', false],
  ['bridge', bridge, '+/store-sensor', false], // "+" could be another prefix
  ['bridge', bridge, subscriptions.siteUplinks('s1'), false],
  ['service', service, subscriptions.allReadings, true],
  ['service', service, subscriptions.allEvents, true],
  ['service', service, subscriptions.allStatus, true],
  ['service', service, topics.readings('s1', 'g1'), true],
  ['service', service, subscriptions.allAcks, true],
  ['service', service, 'cosafe/v1/sites/+/gateways/+/+', false], // would include commands
  ['service', service, subscriptions.siteUplinks('s1'), false], // raw device payloads stay at the edge
  ['service', service, '#', false],
  ['service', service, subscriptions.sys, false],
  ['fire department', fireDepartment, subscriptions.district('north'), true],
  ['fire department', fireDepartment, topics.dispatchAlarm('north', 's1'), true],
  ['fire department', fireDepartment, topics.dispatchAlarm('north', '+'), true],
  ['fire department', fireDepartment, subscriptions.district('south'), false], // another district
  ['fire department', fireDepartment, subscriptions.allDispatchAlarms, false], // every district
  ['fire department', fireDepartment, subscriptions.allEvents, false], // the raw events of every site
  ['fire department', fireDepartment, '#', false],
  ['agency', agency, subscriptions.allAgency, true],
  ['agency', agency, subscriptions.agencyDistrict('south'), true],
  ['agency', agency, subscriptions.allReadings, false], // only what the contract shares with agencies
  ['agency', agency, subscriptions.allEvents, false],
  ['agency', districtAgency, subscriptions.agencyDistrict('north'), true],
  ['agency', districtAgency, subscriptions.agencyDistrict('south'), false],
  ['agency', districtAgency, subscriptions.allAgency, false],
  ['resident', resident, subscriptions.allPublic, true],
  ['resident', resident, topics.publicAlerts(CELL), true],
  ['resident', resident, topics.publicAlerts('+'), true],
  ['resident', resident, '#', false],
  ['resident', resident, '+/#', false],
  ['resident', resident, 'cosafe/v1/#', false],
  ['resident', resident, topics.readings('s1', 'g1'), false], // a business's data
  ['resident', resident, subscriptions.allReadings, false],
  ['resident', resident, subscriptions.allEvents, false],
  ['resident', resident, subscriptions.sys, false],
  ['resident', resident, 'cosafe/v1/+/871fb4662ffffff/alerts', false], // "+" could be "sites"
  ['admin', admin, '#', true],
  ['admin', admin, subscriptions.sys, true],
  ['admin', admin, '$SYS/+/heartbeat', true],
  ['admin', admin, 'a/#/b', false], // not a filter [MQTT-4.7.1-2]
  ['admin', admin, 'a/b+', false], // not a filter [MQTT-4.7.1-3]
];

describe('ACL: publish', () => {
  it.each(publishTable)('%s publishing to %#: %s → %s', (_who, identity, topic, allowed) => {
    expect(mayPublish(identity, topic)).toBe(allowed);
  });
});

describe('ACL: subscribe', () => {
  it.each(subscribeTable)('%s subscribing %#: %s → %s', (_who, identity, filter, allowed) => {
    expect(maySubscribe(identity, filter)).toBe(allowed);
  });
});

describe('ACL: delivery', () => {
  it('delivers only what the role may read, and $SYS only to admins', () => {
    expect(mayReceive(resident, topics.publicAlerts(CELL))).toBe(true);
    expect(mayReceive(resident, topics.readings('s1', 'g1'))).toBe(false);
    expect(mayReceive(resident, '$SYS/broker/heartbeat')).toBe(false);
    expect(mayReceive(service, topics.readings('s1', 'g1'))).toBe(true);
    expect(mayReceive(service, topics.gatewayCommand('s1', 'g1', 'reboot'))).toBe(false);
    expect(mayReceive(gateway, topics.gatewayCommand('s1', 'g1', 'reboot'))).toBe(true);
    expect(mayReceive(gateway, topics.gatewayCommand('s2', 'g1', 'reboot'))).toBe(false);
    expect(mayReceive(admin, '$SYS/broker/heartbeat')).toBe(true);
    expect(mayReceive(admin, topics.readings('s1', 'g1'))).toBe(true);
  });
});

describe("ACL: a device's own topic outside the contract", () => {
  const bridged: Identity = { role: 'device', id: 's1.store', site: 's1', device: 'store', topic: 'zigbee2mqtt/store-sensor' };

  it('lets the device publish there, and its site gateway read exactly that topic', () => {
    expect(mayPublish(bridged, 'zigbee2mqtt/store-sensor')).toBe(true);
    expect(mayPublish(bridged, 'zigbee2mqtt/other-sensor')).toBe(false);
    expect(mayPublish(bridged, topics.deviceUplink('s1', 'store'))).toBe(true);
    const siteTopics = ['zigbee2mqtt/store-sensor'];
    expect(maySubscribe(gateway, 'zigbee2mqtt/store-sensor', siteTopics)).toBe(true);
    expect(mayReceive(gateway, 'zigbee2mqtt/store-sensor', siteTopics)).toBe(true);
    expect(maySubscribe(gateway, 'zigbee2mqtt/#', siteTopics)).toBe(false);
    expect(maySubscribe(gateway, 'zigbee2mqtt/store-sensor')).toBe(false); // not of its site
    expect(maySubscribe(service, 'zigbee2mqtt/store-sensor', siteTopics)).toBe(false); // gateways only
  });
});

describe("ACL: a bridge's prefix, read by its own site's gateway", () => {
  const siteForeign = ['zigbee2mqtt/#'];
  const otherGateway: Identity = { role: 'gateway', id: 's2.g1', site: 's2', gateway: 'g1' };

  it.each([
    ['zigbee2mqtt/#', true],
    ['zigbee2mqtt/store-sensor', true],
    ['zigbee2mqtt/+/availability', true],
    ['zigbee2mqtt', true],
    ['#', false],
    ['+/store-sensor', false],
    ['zigbee2mqtt-annex/#', false],
  ] as const)("the site's gateway subscribing %s: %s", (filter, allowed) => {
    expect(maySubscribe(gateway, filter, siteForeign)).toBe(allowed);
  });

  it("delivers the prefix to its site's gateway only", () => {
    expect(mayReceive(gateway, 'zigbee2mqtt/store-sensor', siteForeign)).toBe(true);
    expect(mayReceive(gateway, 'zigbee2mqtt-annex/x', siteForeign)).toBe(false);
    expect(maySubscribe(otherGateway, 'zigbee2mqtt/#')).toBe(false); // another site's gateway: no bridge of its own here
    expect(mayReceive(otherGateway, 'zigbee2mqtt/store-sensor')).toBe(false);
    expect(maySubscribe(service, 'zigbee2mqtt/#', siteForeign)).toBe(false); // gateways only: raw device payloads stay at the edge
    expect(mayReceive(device, 'zigbee2mqtt/store-sensor', siteForeign)).toBe(false);
  });
});

describe('ACL: grants', () => {
  const everyone = [gateway, device, bridge, service, fireDepartment, agency, districtAgency, resident, owner, monitor, admin];

  it("grants an owner and a monitor nothing over MQTT (they use the hub's HTTP API), not even their own site", () => {
    for (const i of [owner, monitor]) {
      expect(grantsOf(i)).toEqual({ publish: [], subscribe: [] });
      for (const t of [topics.readings('s1', 'g1'), topics.events('s1', 'g1'), topics.status('s1', 'g1'), topics.deviceUplink('s1', 'd1'), subscriptions.allPublic]) {
        expect(mayPublish(i, t), `${i.role} publish ${t}`).toBe(false);
        expect(maySubscribe(i, t), `${i.role} subscribe ${t}`).toBe(false);
        expect(mayReceive(i, t), `${i.role} read ${t}`).toBe(false);
      }
    }
  });

  it('grants no role a wildcard publish at the root, except the admin; a bridge only under its own prefix', () => {
    for (const i of everyone.filter((x) => x.role !== 'admin')) {
      for (const g of grantsOf(i).publish) expect(g.startsWith('cosafe/v1/') || (i.role === 'bridge' && g === `${i.prefix}/#`), `${i.role}: ${g}`).toBe(true);
    }
  });

  it('grants no one but the admin anything under $SYS', () => {
    for (const i of everyone.filter((x) => x.role !== 'admin')) {
      for (const g of [...grantsOf(i).publish, ...grantsOf(i).subscribe]) expect(g.startsWith('$')).toBe(false);
    }
  });

  it('confines site and district roles to their own site and district', () => {
    const elsewhere = [topics.readings('s2', 'g1'), topics.deviceUplink('s2', 'd1'), topics.gatewayCommand('s2', 'g1', 'x'), topics.dispatchAlarm('south', 's2')];
    for (const i of [gateway, device, bridge, fireDepartment, districtAgency]) {
      for (const t of elsewhere) {
        expect(mayPublish(i, t), `${i.role} publish ${t}`).toBe(false);
        expect(mayReceive(i, t), `${i.role} read ${t}`).toBe(false);
      }
    }
  });
});
