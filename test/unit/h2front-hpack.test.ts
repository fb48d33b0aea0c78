// The CRI front's HPACK decoder (src/cri/h2front/hpack.ts, huffman.ts):
// RFC 7541's Appendix C examples, integer and table-size edge cases, and the
// malformed blocks nghttp2 refuses with COMPRESSION_ERROR.
import test from 'ava';
import { encodeWithoutIndexing, HpackDecoder, HpackError, type HeaderBlock } from '../../src/cri/h2front/hpack.js';
import { CODES, huffmanDecode, LENGTHS } from '../../src/cri/h2front/huffman.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const pairs = (b: HeaderBlock) => b.fields.map((f) => [f.name.toString('latin1'), f.value.toString('latin1')]);
const literal = (s: string) => Buffer.concat([Buffer.from([s.length]), Buffer.from(s, 'latin1')]); // plain, < 127 bytes

interface Step {
  block: string;
  fields: [string, string][];
  /** dynamic table, newest first */
  table: [string, string][];
  size: number;
}

function series(t: import('ava').ExecutionContext, tableSize: number, steps: Step[]): void {
  const d = new HpackDecoder(tableSize);
  for (const [i, s] of steps.entries()) {
    t.deepEqual(pairs(d.decode(hex(s.block))), s.fields, `block ${i + 1}: fields`);
    t.deepEqual(d.table().entries, s.table, `block ${i + 1}: dynamic table`);
    t.is(d.table().size, s.size, `block ${i + 1}: table size`);
  }
}

const REQ1: [string, string][] = [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']];
const REQ2: [string, string][] = [...REQ1, ['cache-control', 'no-cache']];
const REQ3: [string, string][] = [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']];
const REQ_TABLES: [string, string][][] = [
  [[':authority', 'www.example.com']],
  [['cache-control', 'no-cache'], [':authority', 'www.example.com']],
  [['custom-key', 'custom-value'], ['cache-control', 'no-cache'], [':authority', 'www.example.com']],
];

test('RFC 7541 C.3: requests without Huffman coding', (t) => {
  series(t, 4096, [
    { block: '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d', fields: REQ1, table: REQ_TABLES[0]!, size: 57 },
    { block: '8286 84be 5808 6e6f 2d63 6163 6865', fields: REQ2, table: REQ_TABLES[1]!, size: 110 },
    { block: '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65', fields: REQ3, table: REQ_TABLES[2]!, size: 164 },
  ]);
});

test('RFC 7541 C.4: requests with Huffman coding', (t) => {
  series(t, 4096, [
    { block: '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff', fields: REQ1, table: REQ_TABLES[0]!, size: 57 },
    { block: '8286 84be 5886 a8eb 1064 9cbf', fields: REQ2, table: REQ_TABLES[1]!, size: 110 },
    { block: '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf', fields: REQ3, table: REQ_TABLES[2]!, size: 164 },
  ]);
});

const DATE1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const DATE2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const LOC = 'https://www.example.com';
const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
const RESP: { fields: [string, string][]; table: [string, string][]; size: number }[] = [
  {
    fields: [[':status', '302'], ['cache-control', 'private'], ['date', DATE1], ['location', LOC]],
    table: [['location', LOC], ['date', DATE1], ['cache-control', 'private'], [':status', '302']],
    size: 222,
  },
  {
    // 307 evicts the oldest entry (:status 302)
    fields: [[':status', '307'], ['cache-control', 'private'], ['date', DATE1], ['location', LOC]],
    table: [[':status', '307'], ['location', LOC], ['date', DATE1], ['cache-control', 'private']],
    size: 222,
  },
  {
    fields: [[':status', '200'], ['cache-control', 'private'], ['date', DATE2], ['location', LOC], ['content-encoding', 'gzip'], ['set-cookie', COOKIE]],
    table: [['set-cookie', COOKIE], ['content-encoding', 'gzip'], ['date', DATE2]],
    size: 215,
  },
];

test('RFC 7541 C.5: responses without Huffman coding, with evictions (table size 256)', (t) => {
  const blocks = [
    `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768
     7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`,
    '4803 3330 37c1 c0bf',
    `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153
     444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
     3d31`,
  ];
  series(t, 256, blocks.map((block, i) => ({ block, ...RESP[i]! })));
});

test('RFC 7541 C.6: responses with Huffman coding, with evictions (table size 256)', (t) => {
  const blocks = [
    `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8
     e9ae 82ae 43d3`,
    '4883 640e ffc1 c0bf',
    `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b
     3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
  ];
  series(t, 256, blocks.map((block, i) => ({ block, ...RESP[i]! })));
});

test('Huffman: padding must be under 8 one-bits, EOS is refused', (t) => {
  const dec = (s: string) => {
    const b = hex(s);
    return huffmanDecode(b, 0, b.length)?.toString('latin1');
  };
  t.is(dec('f1e3 c2e5 f23a 6ba0 ab90 f4ff'), 'www.example.com');
  t.is(dec(''), '');
  t.is(dec('1f'), 'a'); // 'a' is 00011, padded with 111
  t.is(dec('ff'), undefined, '8 bits of padding');
  t.is(dec('1fff'), undefined, "'a' and a byte of padding");
  t.is(dec('00'), undefined, "'0' then padding that is not 1-bits");
  t.is(dec('ffff fffc'), undefined, 'EOS (30 one-bits) inside the string');
  t.is(dec('ffff ffff'), undefined, 'EOS followed by padding');
});

test('integers: prefix boundary, multi-byte, 32-bit limit, length', (t) => {
  const d = new HpackDecoder();
  d.limit = 0xffffffff;
  // size updates (5-bit prefix) carry the integers: 30 fits the prefix, 31 needs a second byte (RFC 7541 §5.1)
  t.deepEqual(d.decode(hex('3e')).tableSizeUpdates, [30]);
  t.deepEqual(d.decode(hex('3f00')).tableSizeUpdates, [31]);
  t.deepEqual(d.decode(hex('3f9a0a')).tableSizeUpdates, [1337], 'RFC 7541 C.1.2');
  t.deepEqual(d.decode(hex('3fe0ffffff0f')).tableSizeUpdates, [0xffffffff], 'the largest 32-bit value');
  t.deepEqual(d.decode(hex('3f8080808000')).tableSizeUpdates, [31], 'redundant zero continuation bytes up to 32 bits are accepted (nghttp2 does)');
  t.throws(() => d.decode(hex('3fe1ffffff0f')), { instanceOf: HpackError, message: /over 32 bits/ });
  t.throws(() => d.decode(hex('3f808080808000')), { instanceOf: HpackError, message: /over 32 bits/ }, 'a sixth continuation byte');
  t.throws(() => d.decode(hex('3f80')), { instanceOf: HpackError, message: /ends inside an integer/ });
  // an index (7-bit prefix) of exactly 127 = 2^7 - 1 takes two bytes
  const big = new HpackDecoder();
  const add = Buffer.concat(Array.from({ length: 66 }, (_, i) => Buffer.concat([Buffer.from([0x40]), literal('k'), literal(`v${i}`)])));
  big.decode(add);
  // index 127 = dynamic 66 = the oldest entry (v0); 126 fits the prefix = v1
  t.deepEqual(pairs(big.decode(hex('ff00 fe'))), [['k', 'v0'], ['k', 'v1']]);
});

test('dynamic table size updates: evict, reset to 0, come only first, stay within the limit', (t) => {
  const d = new HpackDecoder();
  d.decode(Buffer.concat([Buffer.from([0x40]), literal('a'), literal('1'), Buffer.from([0x40]), literal('b'), literal('2')]));
  t.deepEqual(d.table().entries, [['b', '2'], ['a', '1']]);
  // 34 bytes keeps one 34-byte entry: the newest
  t.deepEqual(d.decode(hex('3f03')).tableSizeUpdates, [34]);
  t.deepEqual(d.table(), { entries: [['b', '2']], size: 34, maxSize: 34 });
  // 0 then back up, both at the start of one block (what an encoder sends after a SETTINGS change)
  const b = d.decode(Buffer.concat([hex('20 3f e1 1f'), Buffer.from([0x40]), literal('c'), literal('3')]));
  t.deepEqual(b.tableSizeUpdates, [0, 4096]);
  t.deepEqual(d.table().entries, [['c', '3']], 'the update to 0 emptied the table');
  t.throws(() => d.decode(hex('82 20')), { instanceOf: HpackError, message: /after a header field/ });
  t.throws(() => d.decode(hex('3fe2 1f')), { instanceOf: HpackError, message: /over the limit 4096/ }, '4097');
  d.limit = 8192;
  t.deepEqual(d.decode(hex('3fe1 3f')).tableSizeUpdates, [8192], 'a larger limit the server advertised');
  // an entry larger than the whole table empties it and is not added
  const small = new HpackDecoder(40);
  small.decode(Buffer.concat([Buffer.from([0x40]), literal('a'), literal('1')]));
  small.decode(Buffer.concat([Buffer.from([0x40]), literal('a'), literal('0123456789')]));
  t.deepEqual(small.table(), { entries: [], size: 0, maxSize: 40 });
});

test('malformed blocks are HpackErrors', (t) => {
  const bad = (b: Buffer, msg: RegExp) => t.throws(() => new HpackDecoder().decode(b), { instanceOf: HpackError, message: msg });
  bad(hex('80'), /index 0/);
  bad(hex('be'), /index 62 is past the dynamic table/);
  bad(hex('7e'), /index 62 is past/); // a literal naming a missing dynamic entry
  bad(hex('40 05 61'), /ends inside a string/);
  bad(hex('00 01 61'), /ends before a string/);
  bad(hex('41 81 ff'), /bad Huffman/);
  bad(Buffer.concat([hex('00 01 61 7f 82 ff 03'), Buffer.alloc(65537)]), /65537 bytes/);
  // a decoded list over the limit (1-byte references to a large entry)
  const d = new HpackDecoder(4096, 4000);
  d.decode(Buffer.concat([Buffer.from([0x40]), literal('x'), literal('y'.repeat(100))]));
  t.throws(() => d.decode(Buffer.alloc(40, 0xbe)), { instanceOf: HpackError, message: /header list is over 4000/ });
});

test('encodeWithoutIndexing: a fresh decoder reads the same fields and its table stays empty', (t) => {
  const src = new HpackDecoder();
  src.decode(hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d'));
  const block = src.decode(Buffer.concat([hex('3fe1 0f 3fe1 1f 8286 84be'), hex('1008 7061 7373 776f 7264 0673 6563 7265 74'), hex('4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf')]));
  const out = encodeWithoutIndexing(block);
  const dst = new HpackDecoder();
  dst.decode(Buffer.concat([Buffer.from([0x40]), literal('zz'), literal('1')])); // whatever it holds is never referenced
  const back = dst.decode(out);
  t.deepEqual(pairs(back), [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['password', 'secret'], ['custom-key', 'custom-value']]);
  t.deepEqual(back.tableSizeUpdates, [2048, 4096]);
  t.deepEqual(back.fields.map((f) => f.neverIndexed), [false, false, false, false, true, false]);
  t.deepEqual(dst.table().entries, [['zz', '1']], 'nothing added');
  t.is(out.subarray(0, 8).toString('hex'), '3fe10f3fe11f8286', 'updates first, static matches indexed');
});

/** RFC 7541 §5.2 encoding from Appendix B's table, padded with the EOS prefix (one-bits). */
function huffmanEncode(bytes: Uint8Array): Buffer {
  const bits: number[] = [];
  for (const b of bytes) for (let i = LENGTHS[b]! - 1; i >= 0; i--) bits.push((CODES[b]! >>> i) & 1);
  while (bits.length % 8) bits.push(1);
  const out = Buffer.alloc(bits.length / 8);
  bits.forEach((bit, i) => (out[i >> 3]! |= bit << (7 - (i & 7))));
  return out;
}

test('Huffman: every byte value, alone and in runs, decodes to itself', (t) => {
  for (let b = 0; b < 256; b++) {
    const one = Buffer.from([b]);
    t.deepEqual(huffmanDecode(huffmanEncode(one), 0, huffmanEncode(one).length), one, `byte ${b}`);
  }
  const all = Buffer.from(Array.from({ length: 256 * 3 }, (_, i) => (i * 7 + (i >> 8)) & 0xff));
  const enc = huffmanEncode(all);
  t.deepEqual(huffmanDecode(enc, 0, enc.length), all);
});
