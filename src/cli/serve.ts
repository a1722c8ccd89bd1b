/** `berth serve`: run the registry until SIGTERM/SIGINT, then drain in-flight requests and exit. */
import type { AddressInfo } from 'node:net';
import { buildApp } from '../app.ts';
import { loadConfig, parseListen, type ConfigFlags } from '../config/load.ts';
import { createLogger } from '../logger.ts';

export interface ServeOptions extends ConfigFlags {
  config?: string;
  /** Print `BERTH_LISTENING <url>` on stdout once accepting connections (used by tests and scripts). */
  announce?: boolean;
}

export async function serve(options: ServeOptions): Promise<void> {
  const config = await loadConfig({ file: options.config, flags: options });
  const log = createLogger(config);
  const app = await buildApp(config, log);
  // Handlers first: a signal that arrives while starting up still shuts down cleanly.
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: finishing in-flight requests');
    // Past the grace period, remaining connections are cut; staged uploads are untouched and can be resumed.
    const timer = setTimeout(() => {
      log.warn('grace period over: closing remaining connections');
      app.server.server.closeAllConnections();
    }, config.shutdownGraceSeconds * 1000);
    timer.unref();
    app.close().then(
      () => { log.info('stopped'); process.exit(0); },
      (err) => { log.error({ err }, 'error while stopping'); process.exit(1); },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  const { host, port } = parseListen(config.listen);
  await app.server.listen({ host, port });
  const addr = app.server.server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${shownHost}:${addr.port}`;
  log.info({ url, dataDir: config.dataDir, metadata: config.metadata.driver, storage: config.storage.driver }, 'berth listening');
  if (options.announce) process.stdout.write(`BERTH_LISTENING ${url}\n`);

}
