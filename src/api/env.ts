import type { Logger } from '../logger.ts';
import type { Authenticated } from '../merchants/api-keys.ts';

export interface AppEnv {
  Variables: {
    requestId: string;
    log: Logger;
    auth: Authenticated;
    /** Set by requireScope once the key's scopes were checked (src/api/middleware/auth.ts). */
    scopeChecked: boolean;
    /** The client's address as resolved by clientIpMiddleware (src/api/client-ip.ts). */
    clientIp: string;
  };
}
