/** FUSE protocol encoders/decoders: struct layouts against fuse.h, and the request parser's robustness. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ATTR_OUT_SIZE,
  ENTRY_OUT_SIZE,
  FuseProtocolError,
  IN_HEADER_SIZE,
  INIT_OUT_SIZE,
  Opcode,
  STATFS_OUT_SIZE,
  decodeAttr,
  decodeDirents,
  decodeInitOut,
  direntSize,
  encodeAttrOut,
  encodeEntryOut,
  encodeInitOut,
  encodeOpenOut,
  encodeOutHeader,
  encodeRequest,
  encodeStatfsOut,
  parseRequest,
  writeDirent,
  writeDirentPlus,
} from '../../src/fuse/protocol.js';
import { FuseErrno, toErrno, errnoOf } from '../../src/fuse/errno.js';

const u32 = (...v: number[]) => {
  const b = Buffer.alloc(v.length * 4);
  v.forEach((x, i) => b.writeUInt32LE(x, i * 4));
  return b;
};
const u64 = (...v: (number | bigint)[]) => {
  const b = Buffer.alloc(v.length * 8);
  v.forEach((x, i) => b.writeBigUInt64LE(BigInt(x), i * 8));
  return b;
};
const cstr = (s: string | Buffer) => Buffer.concat([Buffer.from(s), Buffer.from([0])]);

describe('FUSE request parsing', () => {
  it('decodes the in header', () => {
    const { header, req } = parseRequest(encodeRequest(Opcode.LOOKUP, 42n, 7, cstr('name'), { uid: 1000, gid: 100, pid: 4321 }));
    assert.deepEqual(header, { len: IN_HEADER_SIZE + 5, opcode: Opcode.LOOKUP, unique: 42n, nodeid: 7, uid: 1000, gid: 100, pid: 4321 });
    assert.equal(req.op, Opcode.LOOKUP);
    assert.ok('name' in req && Buffer.isBuffer(req.name) && req.name.toString() === 'name');
  });

  it('decodes INIT, WRITE, SETATTR, RENAME2, CREATE, SETXATTR, BATCH_FORGET', () => {
    const init = parseRequest(encodeRequest(Opcode.INIT, 1n, 0, u32(7, 38, 131072, 0x1234, 0))).req;
    assert.deepEqual(init, { op: Opcode.INIT, arg: { major: 7, minor: 38, maxReadahead: 131072, flags: 0x1234 } });

    const data = Buffer.from('payload');
    const wbody = Buffer.concat([u64(5, 4096), u32(data.length, 1), u64(99), u32(0o2, 0), data]);
    const w = parseRequest(encodeRequest(Opcode.WRITE, 2n, 3, wbody)).req;
    assert.equal(w.op, Opcode.WRITE);
    if (w.op === Opcode.WRITE) {
      assert.equal(w.arg.fh, 5);
      assert.equal(w.arg.offset, 4096);
      assert.equal(w.arg.data.toString(), 'payload');
      assert.equal(w.arg.lockOwner, 99n);
    }

    const sbody = Buffer.concat([u32(0b1000 | 0b1, 0), u64(3, 1234, 0, 10, 20, 30), u32(5, 6, 7, 0o100600, 0, 1000, 100, 0)]);
    const s = parseRequest(encodeRequest(Opcode.SETATTR, 3n, 3, sbody)).req;
    assert.equal(s.op, Opcode.SETATTR);
    if (s.op === Opcode.SETATTR) {
      assert.equal(s.arg.valid, 9);
      assert.equal(s.arg.size, 1234);
      assert.equal(s.arg.atime, 10);
      assert.equal(s.arg.mtimensec, 6);
      assert.equal(s.arg.mode, 0o100600);
      assert.equal(s.arg.uid, 1000);
      assert.equal(s.arg.gid, 100);
    }

    const r = parseRequest(encodeRequest(Opcode.RENAME2, 4n, 1, Buffer.concat([u64(9), u32(1, 0), cstr('a'), cstr('b')]))).req;
    assert.equal(r.op, Opcode.RENAME);
    if (r.op === Opcode.RENAME) {
      assert.deepEqual([r.newdir, r.flags, r.name.toString(), r.newname.toString()], [9, 1, 'a', 'b']);
    }

    const c = parseRequest(encodeRequest(Opcode.CREATE, 5n, 1, Buffer.concat([u32(0o1101, 0o100644, 0o22, 1), cstr('new')]))).req;
    assert.equal(c.op, Opcode.CREATE);
    // open_flags 1: FUSE_OPEN_KILL_SUIDGID (HANDLE_KILLPRIV_V2)
    if (c.op === Opcode.CREATE) assert.deepEqual([c.flags, c.mode, c.openFlags, c.name.toString()], [0o1101, 0o100644, 1, 'new']);
    const o = parseRequest(encodeRequest(Opcode.OPEN, 5n, 1, u32(0o1001, 1))).req;
    assert.equal(o.op, Opcode.OPEN);
    if (o.op === Opcode.OPEN) assert.deepEqual([o.flags, o.openFlags], [0o1001, 1]);

    const x = parseRequest(encodeRequest(Opcode.SETXATTR, 6n, 1, Buffer.concat([u32(3, 1), cstr('user.k'), Buffer.from('v\0w')]))).req;
    assert.equal(x.op, Opcode.SETXATTR);
    if (x.op === Opcode.SETXATTR) assert.deepEqual([x.name, x.flags, [...x.value]], ['user.k', 1, [118, 0, 119]]);

    const f = parseRequest(encodeRequest(Opcode.BATCH_FORGET, 7n, 0, Buffer.concat([u32(2, 0), u64(10, 1, 11, 3)]))).req;
    assert.deepEqual(f, { op: Opcode.BATCH_FORGET, items: [{ nodeid: 10, nlookup: 1 }, { nodeid: 11, nlookup: 3 }] });
  });

  it('keeps unknown opcodes for an ENOSYS reply', () => {
    assert.deepEqual(parseRequest(encodeRequest(4000, 1n, 1, Buffer.alloc(0))).req, { op: 'unknown', opcode: 4000 });
  });

  it('rejects truncated bodies and unterminated names with FuseProtocolError', () => {
    assert.throws(() => parseRequest(Buffer.alloc(10)), FuseProtocolError);
    assert.throws(() => parseRequest(encodeRequest(Opcode.LOOKUP, 1n, 1, Buffer.from('no-nul'))), FuseProtocolError);
    assert.throws(() => parseRequest(encodeRequest(Opcode.WRITE, 1n, 1, Buffer.concat([u64(1, 0), u32(100, 0), u64(0), u32(0, 0)]))), FuseProtocolError);
    assert.throws(() => parseRequest(encodeRequest(Opcode.BATCH_FORGET, 1n, 1, u32(1000000, 0))), FuseProtocolError);
    const lying = encodeRequest(Opcode.GETATTR, 1n, 1, Buffer.alloc(16));
    lying.writeUInt32LE(1000, 0);
    assert.throws(() => parseRequest(lying), FuseProtocolError);
  });

  it('property: random bytes never crash the parser, only FuseProtocolError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 60 }), (bytes, opcode) => {
        const b = Buffer.from(bytes);
        // Half the cases get a plausible header so the body parsers are reached too.
        const req = bytes.length % 2 ? b : encodeRequest(opcode, 1n, 1, b);
        try {
          parseRequest(req);
        } catch (e) {
          assert.ok(e instanceof FuseProtocolError, `unexpected ${String(e)}`);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('property: names round trip as bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 255 }).map((a) => Buffer.from(a.map((x) => x || 1))), (name) => {
        const { req } = parseRequest(encodeRequest(Opcode.MKDIR, 1n, 1, Buffer.concat([u32(0o755, 0o22), name, Buffer.from([0])])));
        assert.ok(req.op === Opcode.MKDIR && req.name.equals(name));
      }),
    );
  });
});

describe('FUSE reply encoding', () => {
  const attr = {
    ino: 77,
    mode: 0o100644,
    nlink: 1,
    uid: 1000,
    gid: 1000,
    size: 5000,
    atimeMs: 1_000_000_123.456789,
    mtimeMs: 2000,
    ctimeMs: 3000,
    blksize: 4096,
  };

  it('lays out fuse_entry_out (128 bytes) and fuse_attr', () => {
    const b = encodeEntryOut(77, 3, 1.5, 0.25, attr);
    assert.equal(b.length, ENTRY_OUT_SIZE);
    assert.equal(ENTRY_OUT_SIZE, 128);
    assert.equal(b.readBigUInt64LE(0), 77n);
    assert.equal(b.readBigUInt64LE(8), 3n);
    assert.equal(b.readBigUInt64LE(16), 1n);
    assert.equal(b.readUInt32LE(32), 500_000_000);
    assert.equal(b.readUInt32LE(36), 250_000_000);
    const a = decodeAttr(b, 40);
    assert.equal(a.size, 5000n);
    assert.equal(a.blocks, 10n);
    assert.equal(a.atime, 1_000_000n);
    assert.equal(a.atimensec, 123_456_789);
    assert.equal(a.mtime, 2n);
    assert.equal(a.mode, 0o100644);
    assert.equal(a.blksize, 4096);
  });

  it('prefers nanosecond times and accepts bigint stats', () => {
    const b = encodeAttrOut(1, { ...attr, size: 10n, ino: 2n ** 60n, mtimeNs: 1_700_000_000_999_999_999n });
    assert.equal(b.length, ATTR_OUT_SIZE);
    const a = decodeAttr(b, 16);
    assert.equal(a.ino, 2n ** 60n);
    assert.equal(a.mtime, 1_700_000_000n);
    assert.equal(a.mtimensec, 999_999_999);
  });

  it('lays out init_out, open_out, statfs_out, the out header', () => {
    const i = encodeInitOut({ major: 7, minor: 31, maxReadahead: 1 << 17, flags: 0x400029, maxBackground: 64, congestionThreshold: 48, maxWrite: 1 << 20, timeGran: 1, maxPages: 256 });
    assert.equal(i.length, INIT_OUT_SIZE);
    assert.deepEqual(decodeInitOut(i), { major: 7, minor: 31, maxReadahead: 1 << 17, flags: 0x400029, maxBackground: 64, congestionThreshold: 48, maxWrite: 1 << 20, timeGran: 1, maxPages: 256 });
    const o = encodeOpenOut(9, 1);
    assert.deepEqual([o.length, o.readBigUInt64LE(0), o.readUInt32LE(8)], [16, 9n, 1]);
    const s = encodeStatfsOut({ blocks: 100, bfree: 50, bavail: 40, files: 10, ffree: 5, bsize: 4096, namelen: 255 });
    assert.equal(s.length, STATFS_OUT_SIZE);
    assert.deepEqual([s.readUInt32LE(40), s.readUInt32LE(44), s.readUInt32LE(48)], [4096, 255, 4096]);
    const h = encodeOutHeader(16, -2, 5n);
    assert.deepEqual([h.readUInt32LE(0), h.readInt32LE(4), h.readBigUInt64LE(8)], [16, -2, 5n]);
    for (const u of [0x1_2345_6789n, 2n ** 53n + 3n, 2n ** 64n - 1n]) assert.equal(encodeOutHeader(16, 0, u).readBigUInt64LE(8), u);
  });

  it('packs dirents 8-byte aligned and stops when full', () => {
    const buf = Buffer.alloc(64);
    let pos = writeDirent(buf, 0, 5, 1, 8, Buffer.from('abc'));
    assert.equal(pos, direntSize(3));
    assert.equal(pos, 32);
    pos = writeDirent(buf, pos, 6, 2, 4, Buffer.from('defgh'));
    assert.equal(pos, 64);
    assert.equal(writeDirent(buf, pos, 7, 3, 8, Buffer.from('x')), -1);
    assert.deepEqual(decodeDirents(buf), [
      { ino: 5n, off: 1n, type: 8, name: 'abc' },
      { ino: 6n, off: 2n, type: 4, name: 'defgh' },
    ]);
    const plus = Buffer.alloc(200);
    const end = writeDirentPlus(plus, 0, { nodeid: 5, generation: 0, entryTimeout: 1, attrTimeout: 1, attr }, 5, 1, 8, Buffer.from('abc'));
    assert.equal(end, ENTRY_OUT_SIZE + 32);
    assert.equal(plus.readBigUInt64LE(0), 5n);
  });
});

describe('FUSE errno mapping', () => {
  it('maps FuseErrno, Node error codes and errno numbers', () => {
    assert.equal(toErrno(new FuseErrno('ENOENT')).errno, 2);
    assert.equal(new FuseErrno(39).code, 'ENOTEMPTY');
    assert.equal(toErrno(Object.assign(new Error('x'), { code: 'EEXIST' })).errno, errnoOf('EEXIST'));
    assert.equal(toErrno(Object.assign(new Error('x'), { errno: -13 })).errno, 13);
    assert.deepEqual(toErrno(new TypeError('bug')), { errno: errnoOf('EIO'), expected: false });
  });
});

describe('attribute encoding of numbers', () => {
  it('writes a number field as the same bytes as the equal bigint (u64 and u32 fields, sizes, blocks)', () => {
    const u64 = fc.oneof(fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.constantFrom(0, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1));
    const u32 = fc.oneof(fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: -(2 ** 40), max: 2 ** 40 }));
    fc.assert(
      fc.property(u64, u64, fc.option(u64, { nil: undefined }), u32, u32, u32, fc.integer({ min: 0, max: 2 ** 31 }), (ino, size, blocks, mode, uid, gid, secs) => {
        const t = secs * 1000 + 0.25;
        const asNumbers = { ino, size, blocks, mode, nlink: 1, uid, gid, atimeMs: t, mtimeMs: t, ctimeMs: t };
        const asBigints = { ...asNumbers, ino: BigInt(ino), size: BigInt(size), blocks: blocks === undefined ? undefined : BigInt(blocks), mode: BigInt(mode), uid: BigInt(uid), gid: BigInt(gid) };
        assert.deepEqual(encodeAttrOut(1.5, asNumbers), encodeAttrOut(1.5, asBigints));
        const d = decodeAttr(encodeAttrOut(0, asNumbers), 16);
        assert.equal(d.ino, BigInt(ino));
        assert.equal(d.size, BigInt(size));
        assert.equal(d.blocks, blocks === undefined ? (BigInt(size) + 511n) / 512n : BigInt(blocks));
        assert.equal(d.uid, Number(BigInt(uid) & 0xffff_ffffn));
        assert.deepEqual(encodeEntryOut(ino, 3, 2, 1, asNumbers), encodeEntryOut(ino, 3, 2, 1, asBigints));
        assert.equal(encodeEntryOut(ino, 3, 2, 1, asNumbers).readBigUInt64LE(0), BigInt(ino));
      }),
    );
  });
});
