"""ocicrypt-format layer encryption: key pairs, round trips, recipients, tampering (no mocks)."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
from pathlib import Path

import pytest

from mlflow_plugin.errors import ModelKitError
from mlflow_plugin.trust import ocicrypt
from mlflow_plugin.trust.ocicrypt import (
    ANN_JWE,
    ANN_PUBOPTS,
    decrypt_layer,
    encrypt_layer,
    generate_recipient_keypair,
    load_decryption_key,
    load_recipient,
    open_layer,
)

DATA = os.urandom(3 * (1 << 20) + 12345)  # spans several read chunks and ends mid-block


@pytest.fixture(scope="module")
def ec_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return generate_recipient_keypair(str(tmp_path_factory.mktemp("ec")), "ec")


@pytest.fixture(scope="module")
def rsa_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return generate_recipient_keypair(str(tmp_path_factory.mktemp("rsa")), "rsa")


def _encrypt(pubs: list[str], data: bytes = DATA) -> tuple[bytes, ocicrypt.EncryptedLayer]:
    out = io.BytesIO()
    enc = encrypt_layer(io.BytesIO(data), out, [load_recipient(p) for p in pubs])
    return out.getvalue(), enc


def _decrypt(ct: bytes, enc: ocicrypt.EncryptedLayer, keys: list[str]) -> bytes:
    opened = open_layer(enc.annotations, [load_decryption_key(k) for k in keys], layer=enc.digest)
    out = io.BytesIO()
    assert decrypt_layer(io.BytesIO(ct), out, opened, layer=enc.digest) == enc.plaintext_digest
    return out.getvalue()


def test_keypair_files(ec_keys: tuple[str, str], rsa_keys: tuple[str, str]) -> None:
    for pub, key in (ec_keys, rsa_keys):
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
        assert Path(pub).read_text().startswith("-----BEGIN PUBLIC KEY-----")
        assert Path(key).read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert load_recipient(rsa_keys[0]).key_size == 3072
    assert load_recipient(ec_keys[0]).curve.name == "secp256r1"  # type: ignore[union-attr]
    with pytest.raises(ModelKitError, match="refusing to overwrite"):
        generate_recipient_keypair(str(Path(ec_keys[0]).parent))


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_round_trip_and_format(kind: str, ec_keys: tuple[str, str], rsa_keys: tuple[str, str]) -> None:
    pub, key = ec_keys if kind == "ec" else rsa_keys
    ct, enc = _encrypt([pub])
    assert len(ct) == len(DATA) == enc.size and ct != DATA
    assert DATA[:64] not in ct
    assert _decrypt(ct, enc, [key]) == DATA
    # the format, field by field, as ocicrypt writes it
    pubopts = json.loads(base64.b64decode(enc.annotations[ANN_PUBOPTS], validate=True))
    assert list(pubopts) == ["cipher", "hmac", "cipheroptions"]
    assert pubopts["cipher"] == "AES_256_CTR_HMAC_SHA256" and pubopts["cipheroptions"] == {}
    assert len(base64.b64decode(pubopts["hmac"])) == 32
    jwe = json.loads(base64.b64decode(enc.annotations[ANN_JWE], validate=True))
    protected = json.loads(base64.urlsafe_b64decode(jwe["protected"] + "=="))
    assert protected["enc"] == "A256GCM"
    header = jwe.get("header") or jwe["recipients"][0]["header"]
    assert header["alg"] == ("ECDH-ES+A256KW" if kind == "ec" else "RSA-OAEP")
    opened = open_layer(enc.annotations, [load_decryption_key(key)], layer="l")
    assert opened.digest == enc.plaintext_digest and len(opened.symkey) == 32 and len(opened.nonce) == 16
    assert "symkey" not in repr(opened) and base64.b64encode(opened.symkey).decode() not in repr(opened)


def test_two_recipients_each_opens(ec_keys: tuple[str, str], rsa_keys: tuple[str, str]) -> None:
    ct, enc = _encrypt([ec_keys[0], rsa_keys[0]])
    assert "," not in enc.annotations[ANN_JWE]  # one JWE for the recipient set, as ocicrypt
    assert len(json.loads(base64.b64decode(enc.annotations[ANN_JWE]))["recipients"]) == 2
    assert _decrypt(ct, enc, [ec_keys[1]]) == DATA
    assert _decrypt(ct, enc, [rsa_keys[1]]) == DATA


def test_comma_joined_jwes_are_tried(ec_keys: tuple[str, str], rsa_keys: tuple[str, str]) -> None:
    ct, enc = _encrypt([ec_keys[0]])
    _ct2, other = _encrypt([rsa_keys[0]])
    ann = dict(enc.annotations)
    ann[ANN_JWE] = other.annotations[ANN_JWE] + "," + enc.annotations[ANN_JWE]
    opened = open_layer(ann, [load_decryption_key(ec_keys[1])], layer="l")
    out = io.BytesIO()
    decrypt_layer(io.BytesIO(ct), out, opened, layer="l")
    assert out.getvalue() == DATA


def test_non_recipient_one_line(ec_keys: tuple[str, str], tmp_path: Path) -> None:
    _ct, enc = _encrypt([ec_keys[0]], b"secret")
    _pub, stranger = generate_recipient_keypair(str(tmp_path), "ec")
    with pytest.raises(ModelKitError) as e:
        open_layer(enc.annotations, [load_decryption_key(stranger)], layer="sha256:abc")
    assert str(e.value) == "not a recipient of this kit: none of the decryption keys opens layer sha256:abc"
    with pytest.raises(ModelKitError, match="is encrypted: pass --decrypt-key"):
        open_layer(enc.annotations, [], layer="sha256:abc")


def test_flipped_ciphertext_byte_refused(ec_keys: tuple[str, str]) -> None:
    ct, enc = _encrypt([ec_keys[0]])
    for where in (0, len(ct) // 2, len(ct) - 1):
        bad = bytearray(ct)
        bad[where] ^= 0x01
        opened = open_layer(enc.annotations, [load_decryption_key(ec_keys[1])], layer="l")
        with pytest.raises(ModelKitError, match="failed its HMAC check") as e:
            decrypt_layer(io.BytesIO(bytes(bad)), io.BytesIO(), opened, layer="l")
        assert "\n" not in str(e.value)


def test_tampered_pubopts_and_wrong_digest(ec_keys: tuple[str, str]) -> None:
    _ct, enc = _encrypt([ec_keys[0]], b"hello")
    ann = dict(enc.annotations)
    ann[ANN_PUBOPTS] = base64.b64encode(b'{"cipher":"AES_128_GCM","hmac":"","cipheroptions":{}}').decode()
    with pytest.raises(ModelKitError, match="only AES_256_CTR_HMAC_SHA256"):
        open_layer(ann, [load_decryption_key(ec_keys[1])], layer="l")
    with pytest.raises(ModelKitError, match="read back as"):
        encrypt_layer(io.BytesIO(b"x"), io.BytesIO(), [load_recipient(ec_keys[0])], "sha256:" + "0" * 64)


def test_encrypted_private_key_needs_passphrase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_MODELKIT_KEY_PASSWORD", raising=False)
    pub, key = generate_recipient_keypair(str(tmp_path), "ec", password=b"pa55-enc-key")
    assert Path(key).read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(ModelKitError, match="no passphrase") as e:
        load_decryption_key(key)
    assert "pa55" not in str(e.value)
    with pytest.raises(ModelKitError, match="wrong passphrase") as e:
        load_decryption_key(key, b"not-it")
    assert "not-it" not in str(e.value)
    ct, enc = _encrypt([pub], b"abc")
    opened = open_layer(enc.annotations, [load_decryption_key(key, b"pa55-enc-key")], layer="l")
    out = io.BytesIO()
    decrypt_layer(io.BytesIO(ct), out, opened, layer="l")
    assert out.getvalue() == b"abc"
