import type { MiddlewareHandler } from 'hono';
import { KassaError } from '../../errors.ts';
import type { Deps } from '../../deps.ts';
import type { Scope } from '../../merchants/scopes.ts';
import type { AppEnv } from '../env.ts';

/** Bearer API key authentication: sets `auth` (key + merchant) or answers 401. */
export function requireApiKey(deps: Pick<Deps, 'sql' | 'apiKeys'>): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const header = c.req.header('authorization');
    let presented: string | undefined;
    if (header) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!m) {
        throw new KassaError('api_key_invalid', 'The Authorization header must be "Bearer <API key>".', {
          status: 401, type: 'authentication_error',
        });
      }
      presented = m[1];
    }
    c.set('auth', await deps.apiKeys.authenticate(deps.sql, presented));
    await next();
  };
}

/** 403 unless the key has every listed scope. The scopes ride along as `kassaScopes` (read by the OpenAPI document). */
export function requireScope(...scopes: Scope[]): MiddlewareHandler<AppEnv> & { kassaScopes: readonly Scope[] } {
  const mw: MiddlewareHandler<AppEnv> = async (c, next) => {
    const have = c.get('auth').key.scopes;
    const missing = scopes.filter((s) => !have.includes(s));
    if (missing.length > 0) {
      throw new KassaError('scope_missing', `This API key lacks the scope ${missing.join(', ')} needed for this request.`, {
        status: 403, type: 'permission_error',
      });
    }
    await next();
  };
  return Object.assign(mw, { kassaScopes: scopes });
}
