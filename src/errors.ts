/**
 * Typed errors. Every error the project raises on purpose is an EcryptfsError with a stable
 * `code`, a message that says what happened, to which file (when there is one) and what to do.
 * Messages never contain secrets (passphrases, keys).
 */
export type ErrorCode =
  | 'EBADHEADER' // lower file is not eCryptfs (no valid marker)
  | 'ECORRUPT' // packet or header damaged, file truncated
  | 'ENOKEY' // no key for the sig found in a header / Tag 70 packet
  | 'EWRONGPASS' // wrapped passphrase: wrong wrapping password
  | 'EBADNAME' // encrypted file name that does not decode
  | 'ENAMETOOLONG' // clear name too long to encrypt
  | 'EUNSUPPORTED' // valid but unsupported (Tag 1 public key, unknown cipher code, ...)
  | 'EINVAL' // bad argument / option
  | 'EIO'; // I/O on the lower directory failed

export class EcryptfsError extends Error {
  readonly code: ErrorCode;
  readonly path: string | undefined;
  constructor(code: ErrorCode, message: string, path?: string, options?: { cause?: unknown }) {
    super(path === undefined ? message : `${path}: ${message}`, options);
    this.name = 'EcryptfsError';
    this.code = code;
    this.path = path;
  }
  /** The same error, now naming the file it concerns (errors from pure code carry no path). */
  withPath(path: string): EcryptfsError {
    if (this.path !== undefined) return this;
    return new EcryptfsError(this.code, this.message, path, { cause: this.cause });
  }
}

export function isEcryptfsError(e: unknown, code?: ErrorCode): e is EcryptfsError {
  return e instanceof EcryptfsError && (code === undefined || e.code === code);
}
