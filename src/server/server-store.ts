// Owns what the server needs of a store on any thread: the StoreApi calls and the few filled options it reads.
import type { StoreApi } from '../engine/api.ts';

/** The options the server reads; the Store has them all, and a thread's store client is given them. */
export interface ServerStoreOptions {
  /** Tenant of writes that name none; the tenant service's default tenant. */
  readonly defaultTenant: string;
  /** Largest event payload, checked while a request is parsed. */
  readonly payloadBytesMax: number;
  readonly dataDir: string;
}

/** The Store on its own thread, or a store client (connectStore) on an HTTP worker thread. */
export interface ServerStore extends StoreApi {
  readonly options: ServerStoreOptions;
}
