// Owns the event write contract (DESIGN.md section 3): untrusted input -> PreparedEvent, or E_INVALID_EVENT.

import {
  entityIdBytesMax,
  entityVersionMax,
  eventTypeBytesMax,
  metadataBytesMax,
  tenantIdCharsMax,
} from '../constants.ts';
import { ErrorCode, StoreError } from '../errors.ts';
import { findNonFinite } from './json-numbers.ts';
import { isUuid } from './uuid.ts';

/** 0 none, 1 'any', 2 'no_entity', 3 exact number (expectedVersion). */
export type ExpectedKind = 0 | 1 | 2 | 3;

export const EXPECTED_NONE = 0;
export const EXPECTED_ANY = 1;
export const EXPECTED_NO_ENTITY = 2;
export const EXPECTED_EXACT = 3;

export interface PreparedEvent {
  tenant: string;
  entityId: string;
  eventType: string;
  /** Client-supplied UUID (validated, lowercased) or null: the shard assigns a UUIDv7. */
  id: string | null;
  payloadJson: string;
  metadataJson: string | null;
  expectedKind: ExpectedKind;
  /** Meaningful when expectedKind is 3. */
  expectedVersion: number;
  /** UTF-8 byte lengths; metadataBytes is 0 when metadataJson is null. */
  tenantBytes: number;
  entityBytes: number;
  typeBytes: number;
  payloadBytes: number;
  metadataBytes: number;
}

export interface EventLimits {
  payloadBytesMax: number;
}

function fail(index: number | undefined, field: string, message: string): StoreError {
  return new StoreError(
    ErrorCode.INVALID_EVENT,
    index === undefined ? message : `event ${index}: ${message}`,
    index === undefined ? { field } : { index, field },
  );
}

/** Rejects class instances, arrays, Maps...: only what JSON.parse (or an object literal) produces. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function isTenantChar(c: number): boolean {
  return (
    (c >= 97 && c <= 122) ||
    (c >= 65 && c <= 90) ||
    (c >= 48 && c <= 57) ||
    c === 95 /* _ */ ||
    c === 45 /* - */
  );
}

function checkTenant(tenant: unknown, index: number | undefined): string {
  if (typeof tenant !== 'string') throw fail(index, 'tenant_id', 'tenant_id must be a string');
  const n = tenant.length;
  if (n === 0 || n > tenantIdCharsMax) {
    throw fail(index, 'tenant_id', `tenant_id must be 1..${tenantIdCharsMax} characters of [A-Za-z0-9_-]`);
  }
  for (let i = 0; i < n; i++) {
    if (!isTenantChar(tenant.charCodeAt(i))) {
      throw fail(index, 'tenant_id', `tenant_id must be 1..${tenantIdCharsMax} characters of [A-Za-z0-9_-]`);
    }
  }
  return tenant;
}

/** [A-Za-z0-9_-]{1,64}; throws E_INVALID_EVENT with field 'tenant_id'. */
export function validateTenantId(tenant: unknown): string {
  return checkTenant(tenant, undefined);
}

const eventTypeRule = `event_type must be 1..${eventTypeBytesMax} bytes of [a-z0-9._] with no leading or trailing dot and no '..'`;

function checkEventType(value: unknown, index: number): string {
  if (typeof value !== 'string')
    throw fail(index, 'event_type', 'event_type must be a string; ' + eventTypeRule);
  const n = value.length;
  // Every allowed character is one UTF-8 byte, so the character count is the byte count.
  if (n === 0 || n > eventTypeBytesMax) throw fail(index, 'event_type', eventTypeRule);
  let previous = 0;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c === 46 /* . */) {
      if (i === 0 || i === n - 1 || previous === 46) throw fail(index, 'event_type', eventTypeRule);
    } else if (!((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95)) {
      throw fail(index, 'event_type', eventTypeRule);
    }
    previous = c;
  }
  return value;
}

/** Exactly the code units String.prototype.trim removes (ECMAScript WhiteSpace and LineTerminator). */
function isTrimmedByTrim(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0xa0) return false;
  return (
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

// Returns the UTF-8 byte length, computed in the same pass as the control-character scan.
function checkEntityId(value: unknown, index: number): number {
  if (typeof value !== 'string') throw fail(index, 'entity_id', 'entity_id must be a string');
  const n = value.length;
  if (n === 0) throw fail(index, 'entity_id', 'entity_id must not be empty');
  // Longer than the byte limit in UTF-16 units is over the limit in bytes too; skip scanning huge strings.
  if (n > entityIdBytesMax)
    throw fail(index, 'entity_id', `entity_id must be at most ${entityIdBytesMax} UTF-8 bytes`);
  if (!value.isWellFormed()) {
    throw fail(index, 'entity_id', 'entity_id must be well-formed Unicode (no lone surrogates)');
  }
  if (isTrimmedByTrim(value.charCodeAt(0)) || isTrimmedByTrim(value.charCodeAt(n - 1))) {
    throw fail(index, 'entity_id', 'entity_id must not have leading or trailing whitespace');
  }
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x80) {
      if (c < 0x20 || c === 0x7f) {
        throw fail(
          index,
          'entity_id',
          'entity_id must not contain control characters (U+0000-U+001F, U+007F-U+009F)',
        );
      }
      bytes += 1;
    } else if (c < 0x800) {
      if (c <= 0x9f) {
        throw fail(
          index,
          'entity_id',
          'entity_id must not contain control characters (U+0000-U+001F, U+007F-U+009F)',
        );
      }
      bytes += 2;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      bytes += 2; // well-formed, so each half of a pair contributes half of its 4 bytes
    } else {
      bytes += 3;
    }
  }
  if (bytes > entityIdBytesMax) {
    throw fail(index, 'entity_id', `entity_id must be at most ${entityIdBytesMax} UTF-8 bytes`);
  }
  return bytes;
}

// JSON.stringify gives undefined for undefined/functions/symbols and throws for BigInt and cycles.
function toJson(value: unknown, index: number, field: string): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    throw fail(index, field, `${field} must be a JSON value (${(err as Error).message})`);
  }
  if (json === undefined) throw fail(index, field, `${field} must be a JSON value`);
  // JSON.stringify writes NaN and ±Infinity (e.g. a parsed 1e309) as null: refuse rather than change data.
  if (json.includes('null')) {
    const at = findNonFinite(value);
    if (at !== null) {
      throw fail(
        index,
        field,
        `${field} holds a number JSON cannot carry (NaN or Infinity) at ${shownKey(at)}`,
      );
    }
  }
  return json;
}

function shownKey(key: string): string {
  return key.length > 64 ? key.slice(0, 64) + '...' : key;
}

const expectedVersionRule = `expected_version must be an integer 0..${entityVersionMax}, "any" or "no_entity"`;

// Last tenant that passed validation: one request's events share it, so the check runs once per request.
let lastValidTenant = '';
// Last event type that passed validation (always valid, so reusing it is safe).
let lastValidType: string | null = null;

/** Checks the tenant of a call (cached: a call's events share one), reporting `index` on failure. */
export function checkCallTenant(tenant: string, index: number): void {
  if (tenant !== lastValidTenant) {
    checkTenant(tenant, index);
    lastValidTenant = tenant;
  }
}

/**
 * Reads one untrusted event, field by field, in the order every consumer checks them (so the first error an
 * event has is the one reported, whoever validates it). One instance per consumer is reused for every event:
 * its fields are scratch, valid until the next `read`. It never copies the input's properties into another
 * object, so keys such as __proto__ or constructor (own keys from JSON.parse) are rejected as unknown and
 * cannot pollute anything.
 *
 * The order is: read (shape, unknown fields, event_type, entity_id, tenant_id, id), then payloadJson and the
 * payload size (checkPayloadBytes), then metadataJson and its size (checkMetadataBytes), then expected.
 */
export class EventReader {
  eventType = '';
  entityId = '';
  /** UTF-8 bytes of entityId. */
  entityBytes = 0;
  /** The id as given (a UUID in either case), or null: the shard assigns a UUIDv7. */
  id: string | null = null;
  private payload: unknown = undefined;
  private hasPayload = false;
  private metadata: unknown = undefined;
  private expected: unknown = undefined;
  expectedKind: ExpectedKind = EXPECTED_NONE;
  /** Meaningful when expectedKind is 3. */
  expectedVersion = 0;

  /** Checks the event's shape and its string fields; payload, metadata and expected_version come next. */
  read(input: unknown, index: number, tenant: string): void {
    if (!isPlainObject(input)) {
      throw fail(index, 'event', 'event must be a JSON object');
    }
    let eventType: unknown;
    let entityId: unknown;
    let hasEventType = false;
    let hasEntityId = false;
    let id: unknown;
    let eventTenant: unknown;
    this.payload = undefined;
    this.hasPayload = false;
    this.metadata = undefined;
    this.expected = undefined;

    for (const key in input) {
      if (!Object.hasOwn(input, key)) continue;
      const value = input[key];
      switch (key) {
        case 'event_type':
          eventType = value;
          hasEventType = true;
          break;
        case 'entity_id':
          entityId = value;
          hasEntityId = true;
          break;
        case 'payload':
          this.payload = value;
          this.hasPayload = true;
          break;
        case 'id':
          id = value;
          break;
        case 'metadata':
          this.metadata = value;
          break;
        case 'expected_version':
          this.expected = value;
          break;
        case 'tenant_id':
          eventTenant = value;
          break;
        default:
          throw fail(
            index,
            shownKey(key),
            `unknown field ${JSON.stringify(shownKey(key))} (allowed: id, event_type, entity_id, tenant_id, payload, metadata, expected_version)`,
          );
      }
    }
    // Own non-enumerable properties are invisible to for-in; a JS caller defining one gets no special path.

    if (!hasEventType) throw fail(index, 'event_type', 'event_type is required');
    // Calls usually repeat one event type: a type equal to the last valid one needs no second scan.
    const type = eventType === lastValidType ? (eventType as string) : checkEventType(eventType, index);
    lastValidType = type;
    this.eventType = type;
    if (!hasEntityId) throw fail(index, 'entity_id', 'entity_id is required');
    this.entityBytes = checkEntityId(entityId, index);
    this.entityId = entityId as string;

    // Optional fields given as undefined (JS callers spreading options) count as absent.
    if (eventTenant !== undefined && eventTenant !== tenant) {
      throw fail(index, 'tenant_id', 'tenant_id does not match the tenant of the request (tenant mismatch)');
    }

    this.id = null;
    if (id !== undefined) {
      if (typeof id !== 'string' || !isUuid(id)) {
        throw fail(index, 'id', 'id must be a UUID string (8-4-4-4-12 hex digits)');
      }
      this.id = id;
    }
  }

  /** The payload as JSON text (what is stored); its size is checked next, by checkPayloadBytes. */
  payloadJson(index: number): string {
    if (!this.hasPayload) throw fail(index, 'payload', 'payload is required');
    return toJson(this.payload, index, 'payload');
  }

  /** The metadata as JSON text, or null when absent or null; its size is checked by checkMetadataBytes. */
  metadataJson(index: number): string | null {
    const metadata = this.metadata;
    if (metadata === undefined || metadata === null) return null;
    if (!isPlainObject(metadata)) throw fail(index, 'metadata', 'metadata must be a JSON object or null');
    return toJson(metadata, index, 'metadata');
  }

  /** Sets expectedKind and expectedVersion from expected_version. */
  readExpected(index: number): void {
    const expected = this.expected;
    this.expectedKind = EXPECTED_NONE;
    this.expectedVersion = 0;
    if (expected === undefined) return;
    if (typeof expected === 'number') {
      if (!Number.isSafeInteger(expected) || expected < 0 || expected > entityVersionMax) {
        throw fail(index, 'expected_version', expectedVersionRule);
      }
      this.expectedKind = EXPECTED_EXACT;
      this.expectedVersion = expected;
    } else if (expected === 'any') {
      this.expectedKind = EXPECTED_ANY;
    } else if (expected === 'no_entity') {
      this.expectedKind = EXPECTED_NO_ENTITY;
    } else {
      throw fail(index, 'expected_version', expectedVersionRule);
    }
  }
}

/** Refuses a payload of `bytes` UTF-8 bytes of JSON over the limit. */
export function checkPayloadBytes(bytes: number, index: number, limits: EventLimits): void {
  if (bytes > limits.payloadBytesMax) {
    throw fail(
      index,
      'payload',
      `payload must be at most ${limits.payloadBytesMax} bytes of JSON (got ${bytes})`,
    );
  }
}

/** Refuses metadata of `bytes` UTF-8 bytes of JSON over metadataBytesMax. */
export function checkMetadataBytes(bytes: number, index: number): void {
  if (bytes > metadataBytesMax) {
    throw fail(
      index,
      'metadata',
      `metadata must be at most ${metadataBytesMax} bytes of JSON (got ${bytes})`,
    );
  }
}

const reader = new EventReader();

/**
 * Validates one event of an append request (index = its position, reported in errors) for `tenant`.
 * Reads only the input's own properties and never copies them into another object (see EventReader).
 */
export function prepareEvent(
  input: unknown,
  index: number,
  tenant: string,
  limits: EventLimits,
): PreparedEvent {
  checkCallTenant(tenant, index);
  reader.read(input, index, tenant);
  const payloadJson = reader.payloadJson(index);
  const payloadBytes = Buffer.byteLength(payloadJson, 'utf8');
  checkPayloadBytes(payloadBytes, index, limits);
  const metadataJson = reader.metadataJson(index);
  const metadataBytes = metadataJson === null ? 0 : Buffer.byteLength(metadataJson, 'utf8');
  checkMetadataBytes(metadataBytes, index);
  reader.readExpected(index);
  const type = reader.eventType;
  return {
    tenant,
    entityId: reader.entityId,
    eventType: type,
    id: reader.id === null ? null : reader.id.toLowerCase(),
    payloadJson,
    metadataJson,
    expectedKind: reader.expectedKind,
    expectedVersion: reader.expectedVersion,
    tenantBytes: tenant.length,
    entityBytes: reader.entityBytes,
    typeBytes: type.length,
    payloadBytes,
    metadataBytes,
  };
}
