/**
 * TLS material: reading and checking the PEM files, and swapping the certificate of a running server (SIGHUP)
 * without touching established connections.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Http2SecureServer, ServerHttp2Session } from 'node:http2';
import { createSecureContext, type Server as TlsServer, type TLSSocket } from 'node:tls';

export interface TlsPaths {
  cert?: string;
  key?: string;
}

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
}

/** What the logs say about a certificate. */
export interface CertificateSummary {
  subject: string;
  subjectAltName?: string;
  issuer: string;
  serialNumber: string;
  validFrom: string;
  validTo: string;
  fingerprint256: string;
}

export class TlsMaterialError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsMaterialError';
  }
}

/**
 * Checks that the PEMs parse, that the key belongs to the (first) certificate, and that OpenSSL accepts them as a
 * server context; returns a summary of the certificate. Throws TlsMaterialError saying what is wrong.
 */
export function checkTlsMaterial(material: TlsMaterial, paths: TlsPaths = {}): CertificateSummary {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(material.cert);
  } catch (err) {
    throw new TlsMaterialError(`${paths.cert ?? 'certificate'}: not a PEM certificate (${(err as Error).message})`);
  }
  let matches: boolean;
  try {
    matches = certificate.checkPrivateKey(createPrivateKey(material.key));
  } catch (err) {
    throw new TlsMaterialError(`${paths.key ?? 'key'}: not a PEM private key (${(err as Error).message})`);
  }
  if (!matches) throw new TlsMaterialError(`${paths.key ?? 'the key'} does not belong to the certificate in ${paths.cert ?? 'the certificate file'}`);
  try {
    createSecureContext({ cert: material.cert, key: material.key });
  } catch (err) {
    throw new TlsMaterialError(`the certificate and key are not usable: ${(err as Error).message}`);
  }
  return {
    subject: certificate.subject.replace(/\n/g, ', '),
    subjectAltName: certificate.subjectAltName,
    issuer: certificate.issuer.replace(/\n/g, ', '),
    serialNumber: certificate.serialNumber,
    validFrom: certificate.validFrom,
    validTo: certificate.validTo,
    fingerprint256: certificate.fingerprint256,
  };
}

function requirePaths(paths: TlsPaths): { cert: string; key: string } {
  if (!paths.cert || !paths.key) throw new TlsMaterialError('set both tls.cert and tls.key (--tls-cert, --tls-key)');
  return { cert: paths.cert, key: paths.key };
}

function readError(file: string, err: unknown): TlsMaterialError {
  return new TlsMaterialError(`cannot read ${file}: ${(err as Error).message}`);
}

/** Reads the PEM files at startup (synchronously: the server is being built). */
export function readTlsMaterialSync(paths: TlsPaths): TlsMaterial {
  const p = requirePaths(paths);
  let cert: Buffer;
  let key: Buffer;
  try { cert = readFileSync(p.cert); } catch (err) { throw readError(p.cert, err); }
  try { key = readFileSync(p.key); } catch (err) { throw readError(p.key, err); }
  return { cert, key };
}

export async function readTlsMaterial(paths: TlsPaths): Promise<TlsMaterial> {
  const p = requirePaths(paths);
  const [cert, key] = await Promise.all([
    readFile(p.cert).catch((err: unknown) => { throw readError(p.cert, err); }),
    readFile(p.key).catch((err: unknown) => { throw readError(p.key, err); }),
  ]);
  return { cert, key };
}

/**
 * Re-reads the PEM files and, if they check out, makes them the certificate for new TLS connections. Connections
 * already established keep the certificate they negotiated. On any problem the server keeps its current
 * certificate and the error is thrown for the caller to log.
 */
export async function reloadTlsMaterial(server: TlsServer, paths: TlsPaths): Promise<CertificateSummary> {
  const material = await readTlsMaterial(paths);
  const summary = checkTlsMaterial(material, paths);
  server.setSecureContext({ cert: material.cert, key: material.key });
  return summary;
}

/** Connections of an HTTPS server (HTTP/2 sessions and every TLS socket), for a graceful stop. */
export interface TlsConnections {
  /** Asks HTTP/2 clients to go away (GOAWAY) once their streams finish; later sessions get the same. */
  drain(): void;
  /** Cuts every remaining connection (the grace period is over). */
  destroyAll(): void;
}

/**
 * Fastify's close stops listening and ends idle HTTP/1.1 connections, but an HTTP/2 session stays open until the
 * client leaves; this tracks sessions and sockets so a stop can close them politely, then firmly.
 */
export function trackTlsConnections(server: Http2SecureServer): TlsConnections {
  const sessions = new Set<ServerHttp2Session>();
  const sockets = new Set<TLSSocket>();
  let draining = false;
  server.on('session', (session) => {
    if (draining) {
      session.close();
      return;
    }
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  server.on('secureConnection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return {
    drain() {
      draining = true;
      for (const session of sessions) session.close();
    },
    destroyAll() {
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
    },
  };
}
