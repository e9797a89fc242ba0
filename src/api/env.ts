import type { Logger } from '../logger.ts';
import type { Authenticated } from '../merchants/api-keys.ts';

export interface AppEnv {
  Variables: {
    requestId: string;
    log: Logger;
    auth: Authenticated;
  };
}
