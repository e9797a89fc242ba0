/**
 * JSON text known to encode a `T`: lets a service hand out exact bytes (an Idempotency-Key replay
 * must be byte for byte the first answer) and the API still type the response as a `T`
 * (src/api/schemas.ts jsonText). Plain strings are not JsonText: text becomes one through
 * `toJsonText`, or where code that built it from a `T` says so.
 */
declare const jsonOf: unique symbol;
export type JsonText<T> = string & { readonly [jsonOf]: T };

export const toJsonText = <T>(value: T): JsonText<T> => JSON.stringify(value) as JsonText<T>;
