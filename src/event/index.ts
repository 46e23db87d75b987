// Owns the public surface of the event module: the model, validation, routing hash and frame codec.
export * from './codec.ts';
export { entityHash, shardFor } from './hash.ts';
export { formatTimestampUs, parseTimestampUs, wallClockUs } from './timestamp.ts';
export { bytesToUuid, isUuid, uuidToBytes, writeUuidV7 } from './uuid.ts';
export type { EventLimits, ExpectedKind, PreparedEvent } from './validate.ts';
export {
  EXPECTED_ANY,
  EXPECTED_EXACT,
  EXPECTED_NO_ENTITY,
  EXPECTED_NONE,
  prepareEvent,
  validateTenantId,
} from './validate.ts';
