import pino, { type Logger } from 'pino';
import type { Config } from './config/schema.ts';

/** JSON logs to stdout; one child logger per module (`log.child({ module })`). */
export function createLogger(config: Pick<Config, 'log'>): Logger {
  return pino({ level: config.log.level, base: { service: 'berth' }, timestamp: pino.stdTimeFunctions.isoTime });
}
