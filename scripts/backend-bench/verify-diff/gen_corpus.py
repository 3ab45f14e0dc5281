"""Edge cases for hsmca's verify_signature (scripts/backend-bench/verify-diff.sh): one line per
case, `name spki_hex alg_hex msg_hex sig_hex`. Keys are fresh each run; the cases are the same:
good signatures of every algorithm, malformed and out-of-range ECDSA signatures, other EC point
forms, PSS with other salts or MGF hashes, PKCS#1 DigestInfo variants, odd RSA keys, Ed25519
malleability, small-order and non-canonical keys. Needs python's cryptography."""
import hashlib
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, ed25519, padding, utils

out = []
def add(name, spki, alg, msg, sig):
    out.append(f"{name} {spki.hex()} {alg.hex()} {msg.hex()} {sig.hex()}")

def der_len(n):
    if n < 0x80: return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, 'big'); return bytes([0x80 | len(b)]) + b
def tlv(tag, body): return bytes([tag]) + der_len(len(body)) + body
def der_int(v):
    b = v.to_bytes(max(1, (v.bit_length() + 8) // 8), 'big')
    return tlv(2, b)
def seq(*parts): return tlv(0x30, b''.join(parts))
def oid(dotted):
    parts = [int(x) for x in dotted.split('.')]
    body = bytes([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        enc = [p & 0x7f]; p >>= 7
        while p: enc.append(0x80 | (p & 0x7f)); p >>= 7
        body += bytes(reversed(enc))
    return tlv(6, body)
NULL = b'\x05\x00'
AI = {
 'ecdsa-sha256': seq(oid('1.2.840.10045.4.3.2')),
 'ecdsa-sha384': seq(oid('1.2.840.10045.4.3.3')),
 'ecdsa-sha256-null': seq(oid('1.2.840.10045.4.3.2'), NULL),
 'rsa-sha256': seq(oid('1.2.840.113549.1.1.11'), NULL),
 'rsa-sha256-absent': seq(oid('1.2.840.113549.1.1.11')),
 'rsa-sha384': seq(oid('1.2.840.113549.1.1.12'), NULL),
 'rsa-sha512': seq(oid('1.2.840.113549.1.1.13'), NULL),
 'ed25519': seq(oid('1.3.101.112')),
}
def pss_ai(h, salt):
    hid = {'sha256': '2.16.840.1.101.3.4.2.1', 'sha384': '2.16.840.1.101.3.4.2.2', 'sha512': '2.16.840.1.101.3.4.2.3'}[h]
    hai = seq(oid(hid), NULL)
    params = seq(tlv(0xa0, hai), tlv(0xa1, seq(oid('1.2.840.113549.1.1.8'), hai)), tlv(0xa2, der_int(salt)))
    return seq(oid('1.2.840.113549.1.1.10'), params)
for h, s in [('sha256', 32), ('sha384', 48), ('sha512', 64)]:
    AI['pss-' + h] = pss_ai(h, s)
H = {'sha256': hashes.SHA256(), 'sha384': hashes.SHA384(), 'sha512': hashes.SHA512()}

msg = b'\x5a' * 300

# --- ECDSA -----------------------------------------------------------------------------------
def ec_sig_parse(d):
    return utils.decode_dss_signature(d)
for curve, hname, n_bytes, cname in [(ec.SECP256R1(), 'sha256', 32, 'p256'), (ec.SECP384R1(), 'sha384', 48, 'p384')]:
    key = ec.generate_private_key(curve)
    pub = key.public_key()
    spki = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    n = {'p256': 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
         'p384': 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973}[cname]
    for h in ['sha256', 'sha384']:
        sig = key.sign(msg, ec.ECDSA(H[h]))
        add(f'{cname}-{h}-ok', spki, AI['ecdsa-' + h], msg, sig)
        add(f'{cname}-{h}-wrongmsg', spki, AI['ecdsa-' + h], msg + b'x', sig)
    sig = key.sign(msg, ec.ECDSA(H[hname]))
    ai = AI['ecdsa-' + hname]
    r, s = ec_sig_parse(sig)
    add(f'{cname}-null-params', spki, AI['ecdsa-sha256-null'], msg, key.sign(msg, ec.ECDSA(hashes.SHA256())))
    add(f'{cname}-trailing', spki, ai, msg, sig + b'\x00')
    add(f'{cname}-raw', spki, ai, msg, r.to_bytes(n_bytes, 'big') + s.to_bytes(n_bytes, 'big'))
    body = der_int(r) + der_int(s)
    add(f'{cname}-ber-len', spki, ai, msg, b'\x30\x81' + bytes([len(body)]) + body)
    add(f'{cname}-pad-r', spki, ai, msg, seq(tlv(2, b'\x00' + der_int(r)[2:]), der_int(s)))
    add(f'{cname}-high-s', spki, ai, msg, seq(der_int(r), der_int(n - s)))
    add(f'{cname}-r0', spki, ai, msg, seq(der_int(0), der_int(s)))
    add(f'{cname}-s0', spki, ai, msg, seq(der_int(r), der_int(0)))
    add(f'{cname}-rn', spki, ai, msg, seq(der_int(n), der_int(s)))
    add(f'{cname}-r-plus-n', spki, ai, msg, seq(der_int(r + n), der_int(s)))
    add(f'{cname}-neg-r', spki, ai, msg, seq(tlv(2, (r | (1 << (8 * n_bytes - 1))).to_bytes(n_bytes, 'big')), der_int(s)))
    add(f'{cname}-extra-int', spki, ai, msg, seq(der_int(r), der_int(s), der_int(1)))
    add(f'{cname}-set-tag', spki, ai, msg, tlv(0x31, body))
    add(f'{cname}-empty', spki, ai, msg, b'')
    # Compressed and hybrid keys, same signature.
    comp = pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    unc = pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    def with_point(p):
        algo = spki[2:2 + spki[3] + 2]  # the AlgorithmIdentifier TLV
        return seq(algo, tlv(3, b'\x00' + p))
    add(f'{cname}-compressed-key', with_point(comp), ai, msg, sig)
    add(f'{cname}-hybrid-key', with_point(bytes([6 | (unc[-1] & 1)]) + unc[1:]), ai, msg, sig)
    bad = bytearray(unc); bad[10] ^= 1
    add(f'{cname}-offcurve-key', with_point(bytes(bad)), ai, msg, sig)
    add(f'{cname}-infinity-key', with_point(b'\x00'), ai, msg, sig)
    add(f'{cname}-nested-spki-key', with_point(spki), ai, msg, sig)
    add(f'{cname}-uncompressed-rebuilt', with_point(unc), ai, msg, sig)

# --- RSA -------------------------------------------------------------------------------------
def rsa_spki_from(n, e):
    rpk = seq(der_int(n), der_int(e))
    return seq(seq(oid('1.2.840.113549.1.1.1'), NULL), tlv(3, b'\x00' + rpk))
DIGESTINFO_OID = {'sha256': '2.16.840.1.101.3.4.2.1', 'sha384': '2.16.840.1.101.3.4.2.2', 'sha512': '2.16.840.1.101.3.4.2.3'}
def pkcs1_raw(key, h, digestinfo):
    nums = key.private_numbers(); n = nums.public_numbers.n; d = nums.d
    k = (n.bit_length() + 7) // 8
    em = b'\x00\x01' + b'\xff' * (k - 3 - len(digestinfo)) + b'\x00' + digestinfo
    return pow(int.from_bytes(em, 'big'), d, n).to_bytes(k, 'big')
for bits in [2048, 3072, 4096]:
    key = rsa.generate_private_key(65537, bits)
    pub = key.public_key()
    spki = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    n = pub.public_numbers().n
    for h in ['sha256', 'sha384', 'sha512']:
        sig = key.sign(msg, padding.PKCS1v15(), H[h])
        add(f'rsa{bits}-pkcs1-{h}-ok', spki, AI['rsa-' + h], msg, sig)
        add(f'rsa{bits}-pkcs1-{h}-as-pss', spki, AI['pss-' + h], msg, sig)
        for salt, tag in [(H[h].digest_size, 'ok'), (0, 'salt0'), (20, 'salt20'), (padding.PSS.MAX_LENGTH, 'saltmax')]:
            psig = key.sign(msg, padding.PSS(mgf=padding.MGF1(H[h]), salt_length=salt), H[h])
            add(f'rsa{bits}-pss-{h}-{tag}', spki, AI['pss-' + h], msg, psig)
        psig = key.sign(msg, padding.PSS(mgf=padding.MGF1(hashes.SHA1()), salt_length=H[h].digest_size), H[h])
        add(f'rsa{bits}-pss-{h}-mgf-sha1', spki, AI['pss-' + h], msg, psig)
    sig = key.sign(msg, padding.PKCS1v15(), hashes.SHA256())
    add(f'rsa{bits}-absent-params', spki, AI['rsa-sha256-absent'], msg, sig)
    add(f'rsa{bits}-short', spki, AI['rsa-sha256'], msg, sig[1:])
    add(f'rsa{bits}-long', spki, AI['rsa-sha256'], msg, b'\x00' + sig)
    add(f'rsa{bits}-wrong-hash-ai', spki, AI['rsa-sha384'], msg, sig)
    add(f'rsa{bits}-sig-ge-n', spki, AI['rsa-sha256'], msg, (n + 5).to_bytes(len(sig), 'big') if (n + 5).bit_length() <= 8 * len(sig) else sig)
    dgst = hashlib.sha256(msg).digest()
    di_null = seq(seq(oid(DIGESTINFO_OID['sha256']), NULL), tlv(4, dgst))
    di_absent = seq(seq(oid(DIGESTINFO_OID['sha256'])), tlv(4, dgst))
    add(f'rsa{bits}-digestinfo-null-raw', spki, AI['rsa-sha256'], msg, pkcs1_raw(key, 'sha256', di_null))
    add(f'rsa{bits}-digestinfo-absent', spki, AI['rsa-sha256'], msg, pkcs1_raw(key, 'sha256', di_absent))
    add(f'rsa{bits}-digestinfo-trailing', spki, AI['rsa-sha256'], msg, pkcs1_raw(key, 'sha256', di_null + b'\x00'))
    add(f'rsa{bits}-ed25519-ai', spki, AI['ed25519'], msg, sig)
    add(f'rsa{bits}-ecdsa-ai', spki, AI['ecdsa-sha256'], msg, sig)
# Odd exponents and sizes (signatures are made with raw RSA on our own numbers).
for e, bits, tag in [(3, 2048, 'e3'), (65537, 2048, 'e65537')]:
    key = rsa.generate_private_key(e, bits)
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    add(f'rsa-{tag}', spki, AI['rsa-sha256'], msg, key.sign(msg, padding.PKCS1v15(), hashes.SHA256()))
key = rsa.generate_private_key(65537, 2048)
sig = key.sign(msg, padding.PKCS1v15(), hashes.SHA256())
nn = key.public_key().public_numbers().n
add('rsa-even-modulus', rsa_spki_from(nn + 1, 65537), AI['rsa-sha256'], msg, sig)
add('rsa-even-exponent', rsa_spki_from(nn, 65536), AI['rsa-sha256'], msg, sig)
add('rsa-exponent-1', rsa_spki_from(nn, 1), AI['rsa-sha256'], msg, sig)
add('rsa-exponent-2^33+1', rsa_spki_from(nn, 2**33 + 1), AI['rsa-sha256'], msg, sig)
add('rsa-exponent-2^33-1', rsa_spki_from(nn, 2**33 - 1), AI['rsa-sha256'], msg, sig)
add('rsa-1024', rsa_spki_from(rsa.generate_private_key(65537, 1024).public_key().public_numbers().n, 65537), AI['rsa-sha256'], msg, sig[:128])
add('rsa-2047', rsa_spki_from(nn >> 1 | 1, 65537), AI['rsa-sha256'], msg, sig)

# --- Ed25519 ----------------------------------------------------------------------------------
L = 2**252 + 27742317777372353535851937790883648493
P = 2**255 - 19
key = ed25519.Ed25519PrivateKey.generate()
pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
def ed_spki(raw): return seq(seq(oid('1.3.101.112')), tlv(3, b'\x00' + raw))
sig = key.sign(msg)
add('ed-ok', ed_spki(pub), AI['ed25519'], msg, sig)
add('ed-wrongmsg', ed_spki(pub), AI['ed25519'], msg + b'x', sig)
s_int = int.from_bytes(sig[32:], 'little')
add('ed-s-plus-l', ed_spki(pub), AI['ed25519'], msg, sig[:32] + (s_int + L).to_bytes(32, 'little'))
add('ed-short', ed_spki(pub), AI['ed25519'], msg, sig[:63])
add('ed-with-params', ed_spki(pub), seq(oid('1.3.101.112'), NULL), msg, sig)
identity = (1).to_bytes(32, 'little')
add('ed-identity-key-identity-r', ed_spki(identity), AI['ed25519'], msg, identity + bytes(32))
neg_identity = bytearray(identity); neg_identity[31] |= 0x80
add('ed-negzero-identity-key', ed_spki(bytes(neg_identity)), AI['ed25519'], msg, identity + bytes(32))
add('ed-noncanon-identity-key', ed_spki((P + 1).to_bytes(32, 'little')), AI['ed25519'], msg, identity + bytes(32))
minus1 = (P - 1).to_bytes(32, 'little')
add('ed-order2-key', ed_spki(minus1), AI['ed25519'], msg, identity + bytes(32))
two = (2).to_bytes(32, 'little')
add('ed-offcurve-key', ed_spki(two), AI['ed25519'], msg, sig)
# Non-canonical R: R's y + p (only possible when y < 19: not for a real R); use R with the sign bit flipped.
r_flip = bytearray(sig[:32]); r_flip[31] ^= 0x80
add('ed-r-sign-flipped', ed_spki(pub), AI['ed25519'], msg, bytes(r_flip) + sig[32:])
# Every y >= p as a key, with the real signature (all refused or failing).
for k in range(19):
    add(f'ed-key-y-p-plus-{k}', ed_spki((P + k).to_bytes(32, 'little')), AI['ed25519'], msg, sig)
add('ed-key-33-bytes', ed_spki(pub + b'\x00'), AI['ed25519'], msg, sig)
print('\n'.join(out))
