import { describe, expect, it } from 'vitest';
import { buildConfig, type Config } from '../../../core/config.js';
import { expandDevices } from '../../../core/device-ranges.js';
import { CosafeError } from '../../../core/errors.js';

const device = (opcua: unknown): never => ({ gateway: { devices: [{ id: 'bms', profile: 'opcua-bms-sprinkler-system', endpoint: 'opc.tcp://bms:4840', opcua }] } }) as never;

const opcuaOf = (c: Config) => expandDevices(c.gateway.devices)[0]!.device.opcua;

function details(input: unknown): readonly string[] {
  try {
    buildConfig(input as never);
  } catch (err) {
    if (err instanceof CosafeError) return err.details;
    throw err;
  }
  return [];
}

describe('config: the opcua settings of a device', () => {
  it('defaults to no security and an anonymous session', () => {
    const c = buildConfig(device({}));
    expect(opcuaOf(c)).toEqual({ securityMode: 'None' });
    expect(opcuaOf(buildConfig(device(undefined)))).toBeUndefined();
  });

  it('takes security, certificate files and a user', () => {
    const opcua = { securityMode: 'SignAndEncrypt', securityPolicy: 'Basic256Sha256', certificateFile: '/etc/cosafe/cert.pem', privateKeyFile: '/etc/cosafe/key.pem', username: 'u', password: 'p' };
    expect(opcuaOf(buildConfig(device(opcua)))).toEqual(opcua);
  });

  it('reports every inconsistency at once, by field', () => {
    expect(details(device({ securityMode: 'Sign', securityPolicy: 'None', certificateFile: 'cert.pem', username: 'u' }))).toEqual([
      'config gateway.devices[0].opcua.certificateFile: must be an absolute path to a PEM file',
      'config gateway.devices[0].opcua.securityPolicy: securityMode Sign needs a securityPolicy other than None',
      'config gateway.devices[0].opcua.privateKeyFile: give certificateFile and privateKeyFile together',
      'config gateway.devices[0].opcua.password: give username and password together',
    ]);
    expect(details(device({ securityPolicy: 'Basic256Sha256' }))).toEqual([
      'config gateway.devices[0].opcua.securityPolicy: securityPolicy Basic256Sha256 needs securityMode Sign or SignAndEncrypt',
    ]);
    expect(details(device({ securityMode: 'Encrypt', user: 'x' }))).toHaveLength(2);
  });
});
