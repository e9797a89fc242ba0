/**
 * Parsing the merchant's Bitcoin key material: output descriptors (BIP-380/381/382/386/389) and
 * extended public keys (BIP-32 xpub/tpub and SLIP-132 ypub/zpub/upub/vpub).
 *
 * Kassa is non-custodial: it only ever needs public key material. Anything that looks like a
 * private key (xprv/tprv/yprv/zprv/uprv/vprv, WIF, or a descriptor containing one) is rejected with
 * a 400 whose message says so. The result is a small JSON-serialisable `BitcoinKeySource` with a
 * canonical descriptor (`h` hardened markers, receive branch `/0/*`, BIP-380 checksum).
 */
import { invalidParam, type KassaError } from '../../errors.ts';
import { base58CheckDecode, base58CheckEncode, BASE58_CHARS } from './base58.ts';
import { bip32 } from './ecc.ts';
import {
  BITCOIN_ADDRESS_TYPES,
  EXTENDED_KEY_VERSIONS,
  bitcoinNetwork,
  isBitcoinNetworkName,
  keyFamily,
  standardPublicVersion,
  type BitcoinAddressType,
  type BitcoinNetworkName,
  type ExtendedKeyVersion,
} from './networks.ts';

export interface BitcoinKeySourceInput {
  descriptor?: string | undefined;
  xpub?: string | undefined;
  address_type?: BitcoinAddressType | undefined;
}

export type BitcoinKeyOrigin = {
  /** Master key fingerprint, 8 lowercase hex characters. */
  fingerprint: string;
  /** Derivation path from the master to the account key, e.g. `m/84h/0h/0h`. */
  path: string;
};

/**
 * Normalised, JSON-serialisable key source. Receive addresses are `<xpub>/0/<index>`. A type alias
 * (not an interface) so it is a `postgres.JSONValue` as it stands: stored with `tx.json(source)`.
 */
export type BitcoinKeySource = {
  network: BitcoinNetworkName;
  address_type: BitcoinAddressType;
  /** Account-level extended public key in standard form (`xpub…` on mainnet, `tpub…` otherwise). */
  xpub: string;
  origin: BitcoinKeyOrigin | null;
  /** Canonical receive descriptor with checksum, e.g. `wpkh([73c5da0a/84h/0h/0h]xpub…/0/*)#…`. */
  descriptor: string;
};

// ---------------------------------------------------------------------------------------------
// BIP-380 checksum

const INPUT_CHARSET = '0123456789()[],\'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#"\\ ';
const CHECKSUM_CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GENERATOR = [0xf5dee51989n, 0xa9fdca3312n, 0x1bab10e32dn, 0x3706b1677an, 0x644d626ffdn] as const;

function polymod(c: bigint, val: number): bigint {
  const c0 = c >> 35n;
  c = ((c & 0x7ffffffffn) << 5n) ^ BigInt(val);
  for (let i = 0; i < 5; i++) if ((c0 >> BigInt(i)) & 1n) c ^= GENERATOR[i]!;
  return c;
}

/** The 8-character BIP-380 checksum of a descriptor body (without `#`); null if it has a character outside the descriptor charset. */
export function descriptorChecksum(body: string): string | null {
  let c = 1n;
  let cls = 0;
  let clscount = 0;
  for (const ch of body) {
    const pos = INPUT_CHARSET.indexOf(ch);
    if (pos === -1) return null;
    c = polymod(c, pos & 31);
    cls = cls * 3 + (pos >> 5);
    if (++clscount === 3) {
      c = polymod(c, cls);
      cls = 0;
      clscount = 0;
    }
  }
  if (clscount > 0) c = polymod(c, cls);
  for (let j = 0; j < 8; j++) c = polymod(c, 0);
  c ^= 1n;
  let out = '';
  for (let j = 0; j < 8; j++) out += CHECKSUM_CHARSET[Number((c >> BigInt(5 * (7 - j))) & 31n)];
  return out;
}

/** Returns `body#checksum`, replacing an existing checksum if there is one. */
export function addDescriptorChecksum(descriptor: string): string {
  const body = descriptor.split('#')[0]!;
  const sum = descriptorChecksum(body);
  if (sum === null) throw invalidParam('descriptor', 'The descriptor contains a character that is not allowed in output descriptors.');
  return `${body}#${sum}`;
}

/** True when the descriptor carries a checksum and it matches. */
export function verifyDescriptorChecksum(descriptor: string): boolean {
  const i = descriptor.indexOf('#');
  if (i < 0) return false;
  const sum = descriptorChecksum(descriptor.slice(0, i));
  return sum !== null && sum === descriptor.slice(i + 1);
}

// ---------------------------------------------------------------------------------------------
// Errors

const PRIVATE_KEY_MESSAGE =
  'This looks like a private key. Kassa never needs a private key: paste the extended public key (xpub/zpub/tpub/vpub) or public output descriptor from your wallet instead, and keep the private key in your wallet.';

function privateKeyError(param: string): KassaError {
  return invalidParam(param, PRIVATE_KEY_MESSAGE, 'private_key_not_allowed');
}

function networkMismatch(param: string, prefix: string, network: BitcoinNetworkName): KassaError {
  const wanted = network === 'mainnet' ? 'xpub, ypub or zpub' : 'tpub, upub or vpub';
  const keyNet = prefix[0] === 'x' || prefix[0] === 'y' || prefix[0] === 'z' || prefix[0] === 'Y' || prefix[0] === 'Z' ? 'mainnet' : 'a test network (testnet/signet/regtest)';
  return invalidParam(
    param,
    `The ${prefix} key is for ${keyNet}, but this Bitcoin method is configured for ${network}. Use a key for ${network} (${wanted}).`,
    'network_mismatch',
  );
}

// ---------------------------------------------------------------------------------------------
// Extended keys

interface DecodedExtendedKey {
  version: ExtendedKeyVersion;
  /** 78-byte serialisation with the standard (xpub/tpub) version bytes. */
  standard: Uint8Array;
}

/** True if a base58 token is a private key (extended private key or WIF). */
function isPrivateKeyToken(token: string): boolean {
  const d = base58CheckDecode(token);
  if (!d.ok) return false;
  const p = d.payload;
  if (p.length === 78) {
    const v = EXTENDED_KEY_VERSIONS.get(((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0);
    return v?.kind === 'private' || p[45] === 0; // unknown version with a 0x00-prefixed key is a private key
  }
  // WIF: 0x80 (mainnet) / 0xef (test) + 32-byte key (+ 0x01 when compressed)
  return (p.length === 33 || (p.length === 34 && p[33] === 1)) && (p[0] === 0x80 || p[0] === 0xef);
}

/** Scans free text for anything that decodes as a private key (WIF or extended private key). */
function containsPrivateKey(text: string): boolean {
  const tokens = text.match(/[1-9A-HJ-NP-Za-km-z]{50,}/g);
  return tokens !== null && tokens.some(isPrivateKeyToken);
}

function decodeExtendedKey(token: string, network: BitcoinNetworkName, param: string): DecodedExtendedKey {
  if (!BASE58_CHARS.test(token)) {
    throw invalidParam(param, 'The extended public key contains characters that are not valid Base58.', 'invalid_extended_key');
  }
  const d = base58CheckDecode(token);
  if (!d.ok) {
    throw invalidParam(param, 'The extended public key is not valid: its Base58Check checksum does not match (a typo or a truncated copy?).', 'invalid_extended_key');
  }
  const p = d.payload;
  if (isPrivateKeyToken(token)) throw privateKeyError(param);
  if (p.length !== 78) {
    throw invalidParam(param, `The extended public key is not valid: it decodes to ${p.length} bytes, expected 78.`, 'invalid_extended_key');
  }
  const versionBytes = ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
  const version = EXTENDED_KEY_VERSIONS.get(versionBytes);
  if (!version) {
    throw invalidParam(param, 'The extended public key has unknown version bytes. Use an xpub/ypub/zpub (mainnet) or tpub/upub/vpub (test networks).', 'invalid_extended_key');
  }
  if (version.kind === 'private') throw privateKeyError(param);
  if (version.multisig) {
    throw invalidParam(param, `${version.prefix} keys are for multisig wallets, which Kassa does not support. Use a single-signature wallet's xpub/zpub/ypub.`, 'unsupported_script_type');
  }
  if (version.family !== keyFamily(network)) throw networkMismatch(param, version.prefix, network);
  const standard = new Uint8Array(p);
  const sv = standardPublicVersion(version.family);
  standard[0] = sv >>> 24;
  standard[1] = (sv >>> 16) & 0xff;
  standard[2] = (sv >>> 8) & 0xff;
  standard[3] = sv & 0xff;
  // Let bip32 validate the point (it rejects keys that are not on the curve).
  try {
    bip32().fromBase58(base58CheckEncode(standard), bitcoinNetwork(network));
  } catch (err) {
    throw invalidParam(param, 'The extended public key is not valid: its public key is not a valid secp256k1 point.', 'invalid_extended_key');
  }
  return { version, standard };
}

// ---------------------------------------------------------------------------------------------
// Descriptors

const SCRIPT_NAMES = ['pk', 'pkh', 'wpkh', 'sh', 'wsh', 'tr', 'multi', 'sortedmulti', 'multi_a', 'sortedmulti_a', 'combo', 'addr', 'raw', 'rawtr'];
const WRAP: Record<BitcoinAddressType, [string, string]> = {
  p2wpkh: ['wpkh(', ')'],
  p2tr: ['tr(', ')'],
  'p2sh-p2wpkh': ['sh(wpkh(', '))'],
};
const SUPPORTED = 'wpkh(KEY/0/*), tr(KEY/0/*) or sh(wpkh(KEY/0/*))';

function canonicalDescriptor(type: BitcoinAddressType, xpub: string, origin: BitcoinKeyOrigin | null): string {
  const [open, close] = WRAP[type];
  const originText = origin ? `[${origin.fingerprint}${origin.path.slice(1)}]` : '';
  return addDescriptorChecksum(`${open}${originText}${xpub}/0/*${close}`);
}

function parseDescriptorScript(body: string): { type: BitcoinAddressType; keyExpr: string } {
  let m: RegExpExecArray | null;
  if ((m = /^sh\(wpkh\((.*)\)\)$/.exec(body))) return { type: 'p2sh-p2wpkh', keyExpr: m[1]! };
  if ((m = /^wpkh\((.*)\)$/.exec(body))) return { type: 'p2wpkh', keyExpr: m[1]! };
  if ((m = /^tr\((.*)\)$/.exec(body))) {
    if (m[1]!.includes(',')) {
      throw invalidParam('descriptor', 'Taproot descriptors with script trees are not supported; use a key-path-only tr(KEY/0/*) descriptor.', 'unsupported_script_type');
    }
    return { type: 'p2tr', keyExpr: m[1]! };
  }
  const name = /^([a-z_]+)\(/.exec(body)?.[1];
  const balanced = [...body].reduce((d, ch) => (d < 0 ? d : ch === '(' ? d + 1 : ch === ')' ? d - 1 : d), 0) === 0;
  const supportedShape = name === 'wpkh' || name === 'tr' || (name === 'sh' && body.startsWith('sh(wpkh('));
  if (name && SCRIPT_NAMES.includes(name) && balanced && !supportedShape) {
    throw invalidParam('descriptor', `Unsupported descriptor script type '${name}(…)'. Kassa supports single-key ${SUPPORTED}.`, 'unsupported_script_type');
  }
  throw invalidParam('descriptor', `The descriptor could not be parsed. Expected ${SUPPORTED}, optionally with a [fingerprint/path] origin and a #checksum.`);
}

const KEY_EXPR = /^(?:\[([^\]]*)\])?([^/[\]]+)((?:\/[^/]*)*)$/;

function parseOrigin(text: string): BitcoinKeyOrigin {
  const parts = text.split('/');
  const fp = parts[0]!;
  if (!/^[0-9a-fA-F]{8}$/.test(fp)) {
    throw invalidParam('descriptor', `The key origin fingerprint '${fp}' must be exactly 8 hex characters.`);
  }
  let path = 'm';
  for (const step of parts.slice(1)) {
    const m = /^(\d+)(['hH]?)$/.exec(step);
    if (!m || Number(m[1]) >= 0x80000000 || (m[1]!.length > 1 && m[1]![0] === '0')) {
      throw invalidParam('descriptor', `The key origin path element '${step}' is not valid (expected a number below 2^31, optionally followed by h or ').`);
    }
    path += `/${Number(m[1])}${m[2] ? 'h' : ''}`;
  }
  return { fingerprint: fp.toLowerCase(), path };
}

function parseRangeSuffix(suffix: string): void {
  if (suffix === '/0/*' || /^\/<0(;\d+)+>\/\*$/.test(suffix)) return;
  if (/\*['hH]$/.test(suffix) || /\/\d+['hH]/.test(suffix)) {
    throw invalidParam('descriptor', 'Hardened derivation after the extended key needs the private key, which Kassa never has. Use the account xpub with /0/* (or /<0;1>/*).');
  }
  if (suffix === '') {
    throw invalidParam('descriptor', 'The descriptor must be ranged (KEY/0/*) so that every invoice gets a fresh address.');
  }
  throw invalidParam('descriptor', `Unsupported derivation '${suffix}' after the key. Kassa derives receive addresses as KEY/0/* (or KEY/<0;1>/*, using the receive branch).`);
}

function parseDescriptor(raw: string, network: BitcoinNetworkName, requested: BitcoinAddressType | undefined): BitcoinKeySource {
  const text = raw.trim();
  if (containsPrivateKey(text)) throw privateKeyError('descriptor');
  const hashes = text.split('#');
  if (hashes.length > 2) throw invalidParam('descriptor', 'The descriptor has more than one # checksum separator.');
  const body = hashes[0]!;
  if (descriptorChecksum(body) === null) throw invalidParam('descriptor', 'The descriptor contains a character that is not allowed in output descriptors.');
  if (hashes.length === 2) {
    const given = hashes[1]!;
    if (!/^[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{8}$/.test(given)) {
      throw invalidParam('descriptor', 'The descriptor checksum after # must be 8 characters.', 'descriptor_checksum_mismatch');
    }
    if (descriptorChecksum(body) !== given) {
      throw invalidParam('descriptor', 'The descriptor checksum does not match (the descriptor was changed or mistyped). Copy it again from your wallet.', 'descriptor_checksum_mismatch');
    }
  }
  const { type, keyExpr } = parseDescriptorScript(body);
  const km = KEY_EXPR.exec(keyExpr);
  if (!km) throw invalidParam('descriptor', `The key expression '${keyExpr}' could not be parsed. Expected [fingerprint/path]xpub/0/*.`);
  const origin = km[1] !== undefined ? parseOrigin(km[1]) : null;
  const key = km[2]!;
  if (/^(02|03)[0-9a-fA-F]{64}$|^04[0-9a-fA-F]{128}$|^[0-9a-fA-F]{64}$/.test(key)) {
    throw invalidParam('descriptor', 'The descriptor uses a single public key; Kassa needs an extended public key (xpub/tpub) with /0/* so that every invoice gets a fresh address.');
  }
  const decoded = decodeExtendedKey(key, network, 'descriptor');
  if (decoded.version.implies && decoded.version.implies !== type) {
    throw invalidParam('descriptor', `A ${decoded.version.prefix} key is for ${decoded.version.implies} addresses, but the descriptor is ${type}. Use the plain xpub/tpub form of the key in descriptors.`, 'address_type_mismatch');
  }
  parseRangeSuffix(km[3]!);
  if (requested && requested !== type) {
    throw invalidParam('address_type', `address_type '${requested}' contradicts the descriptor, which is ${type}.`, 'address_type_mismatch');
  }
  const xpub = base58CheckEncode(decoded.standard);
  return { network, address_type: type, xpub, origin, descriptor: canonicalDescriptor(type, xpub, origin) };
}

function parseXpub(raw: string, network: BitcoinNetworkName, requested: BitcoinAddressType | undefined): BitcoinKeySource {
  const text = raw.trim();
  if (text.includes('(')) {
    throw invalidParam('xpub', 'This looks like an output descriptor; pass it as `descriptor` instead of `xpub`.');
  }
  if (isPrivateKeyToken(text)) throw privateKeyError('xpub');
  const decoded = decodeExtendedKey(text, network, 'xpub');
  const implied = decoded.version.implies;
  if (implied && requested && implied !== requested) {
    throw invalidParam(
      'address_type',
      `A ${decoded.version.prefix} key is for ${implied} addresses, but address_type is '${requested}'. Omit address_type or export the matching key (xpub for any type).`,
      'address_type_mismatch',
    );
  }
  const type = requested ?? implied ?? 'p2wpkh';
  const xpub = base58CheckEncode(decoded.standard);
  return { network, address_type: type, xpub, origin: null, descriptor: canonicalDescriptor(type, xpub, null) };
}

/**
 * Parses a merchant's Bitcoin key material into a normalised `BitcoinKeySource`.
 * Exactly one of `descriptor` / `xpub` must be given. Throws a 400 `KassaError` (with `param`)
 * for private keys (`private_key_not_allowed`), keys of the other network (`network_mismatch`),
 * checksum errors (`descriptor_checksum_mismatch`), unsupported scripts (`unsupported_script_type`),
 * contradicting address types (`address_type_mismatch`) and malformed input.
 */
export function parseBitcoinKeySource(input: BitcoinKeySourceInput, network: BitcoinNetworkName): BitcoinKeySource {
  if (!isBitcoinNetworkName(network)) bitcoinNetwork(network); // throws a clear error
  const requested = input.address_type;
  if (requested !== undefined && !(BITCOIN_ADDRESS_TYPES as readonly string[]).includes(requested)) {
    throw invalidParam('address_type', `address_type must be one of: ${BITCOIN_ADDRESS_TYPES.join(', ')}.`);
  }
  const hasDescriptor = typeof input.descriptor === 'string' && input.descriptor.trim() !== '';
  const hasXpub = typeof input.xpub === 'string' && input.xpub.trim() !== '';
  if (input.descriptor !== undefined && typeof input.descriptor !== 'string') throw invalidParam('descriptor', 'descriptor must be a string.');
  if (input.xpub !== undefined && typeof input.xpub !== 'string') throw invalidParam('xpub', 'xpub must be a string.');
  if (hasDescriptor && hasXpub) throw invalidParam('xpub', 'Pass either descriptor or xpub, not both.');
  if (hasDescriptor) return parseDescriptor(input.descriptor!, network, requested);
  if (hasXpub) return parseXpub(input.xpub!, network, requested);
  throw invalidParam('xpub', 'A Bitcoin payment method needs an extended public key (xpub) or an output descriptor.', 'parameter_missing');
}
