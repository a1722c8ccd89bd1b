/**
 * `berth serve`: run the registry until SIGTERM/SIGINT, then drain in-flight requests and exit. With TLS
 * configured it serves HTTPS (HTTP/2 and HTTP/1.1 by ALPN), and SIGHUP reloads the certificate and key.
 */
import type { Http2SecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import { buildApp } from '../app.ts';
import { startupOver } from '../memory.ts';
import { ConfigError, loadConfig, parseListen, type ConfigFlags } from '../config/load.ts';
import { checkTlsMaterial, readTlsMaterial, reloadTlsMaterial, TlsMaterialError, trackTlsConnections, type TlsConnections } from '../http/tls.ts';
import { createLogger, protectStdio } from '../logger.ts';
import { CliError } from './errors.ts';
import { checkListenAddress, checkWritableDirectories, listenErrorMessage } from './preflight.ts';

export interface ServeOptions extends ConfigFlags {
  config?: string;
  /** Print `BERTH_LISTENING <url>` on stdout once accepting connections (used by tests and scripts). */
  announce?: boolean;
}

export async function serve(options: ServeOptions): Promise<void> {
  const config = await loadConfig({ file: options.config, flags: options });
  // Before anything is written (keys, credentials, the database): a user's mistake fails here, as one line.
  await checkWritableDirectories(config);
  await checkListenAddress(config.listen);
  const log = createLogger(config);
  // A full disk under redirected output must not end the server (logging itself drops and counts: logger.ts).
  protectStdio();
  const tlsWanted = Boolean(config.tls.cert && config.tls.key);
  if (tlsWanted) {
    // Refuse unusable certificate files before anything else starts, with a message that names them.
    try {
      checkTlsMaterial(await readTlsMaterial(config.tls), config.tls);
    } catch (err) {
      if (err instanceof TlsMaterialError) throw new ConfigError(`tls: ${err.message}`);
      throw err;
    }
  }
  const app = await buildApp(config, log);
  const raw = app.server.server;
  const tlsServer = raw instanceof TlsServer ? (raw as unknown as Http2SecureServer) : undefined;
  if (tlsWanted && !tlsServer) {
    await app.close();
    throw new Error('tls.cert and tls.key are set but the server was built without TLS (buildServer needs `tls: config.tls`)');
  }
  const connections: TlsConnections | undefined = tlsServer ? trackTlsConnections(tlsServer) : undefined;

  // Handlers first: a signal that arrives while starting up still shuts down cleanly.
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: finishing in-flight requests');
    // Past the grace period, remaining connections are cut; staged uploads are untouched and can be resumed.
    const timer = setTimeout(() => {
      log.warn('grace period over: closing remaining connections');
      if (connections) connections.destroyAll();
      else app.server.server.closeAllConnections();
    }, config.shutdownGraceSeconds * 1000);
    timer.unref();
    app.close().then(
      () => { log.info('stopped'); process.exit(0); },
      (err) => { log.error({ err }, 'error while stopping'); process.exit(1); },
    );
    // HTTP/2 clients keep their sessions open; tell them to go once their streams are done.
    connections?.drain();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  // SIGHUP: new TLS connections get the certificate and key now in the files; established ones keep theirs. A file
  // that does not check out leaves the current certificate in place. Reloads run one after another.
  let reloading: Promise<void> = Promise.resolve();
  process.on('SIGHUP', () => {
    if (!tlsServer) {
      log.info('SIGHUP: TLS is not configured, nothing to reload');
      return;
    }
    reloading = reloading.then(() => reloadTlsMaterial(tlsServer, config.tls).then(
      (certificate) => log.info({ certificate }, 'TLS certificate reloaded'),
      (err) => log.error({ err: { message: (err as Error).message } }, 'TLS certificate reload failed: still serving the previous certificate'),
    ));
  });

  const { host, port } = parseListen(config.listen);
  try {
    await app.server.listen({ host, port });
  } catch (err) {
    // Taken between the check above and now: say so as the check would have.
    await app.close();
    if (typeof (err as NodeJS.ErrnoException).code === 'string' && (err as NodeJS.ErrnoException).syscall === 'listen') {
      throw new CliError(listenErrorMessage(config.listen, err as NodeJS.ErrnoException));
    }
    throw err;
  }
  startupOver();
  const addr = app.server.server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `${tlsServer ? 'https' : 'http'}://${shownHost}:${addr.port}`;
  log.info({ url, dataDir: config.dataDir, metadata: config.metadata.driver, storage: config.storage.driver, tls: Boolean(tlsServer) }, 'berth listening');
  if (options.announce) process.stdout.write(`BERTH_LISTENING ${url}\n`);
}
