import { CosafeError } from '../../core/errors.js';
import type { AdapterFactory } from './adapter.js';
import { createModbusRtuAdapter } from './modbus-rtu.js';
import { createMqttAdapter } from './mqtt.js';
import { createSerialLinesAdapter } from './serial-lines.js';
import { createOpcuaAdapter } from './opcua.js';

/** Transports by the name a profile gives them. */
export const adapterRegistry: Readonly<Record<string, AdapterFactory>> = {
  mqtt: createMqttAdapter,
  'modbus-rtu': createModbusRtuAdapter,
  'serial-lines': createSerialLinesAdapter,
  opcua: createOpcuaAdapter,
};

export function adapterFor(kind: string): AdapterFactory {
  const factory = adapterRegistry[kind];
  if (!factory) {
    throw new CosafeError('COSAFE_ERR_ADAPTER_UNKNOWN', `no adapter for transport "${kind}"; known: ${Object.keys(adapterRegistry).join(', ')}`);
  }
  return factory;
}
