import io, os, hashlib
from mlflow_plugin.oci.registry import RegistryRepository
from mlflow_plugin.oci.auth import Credentials

def test_plain(registry):
    r = RegistryRepository(registry.host, "smoke/a")
    data = os.urandom(3 << 20)
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    assert r.push_blob(io.BytesIO(data), d, len(data)) is True
    assert r.push_blob(io.BytesIO(data), d, len(data)) is False
    assert r.read_blob(d) == data

def test_basic(auth_registry):
    r = RegistryRepository(auth_registry.host, "smoke/a", credentials=Credentials(auth_registry.username, auth_registry.password), ca_bundle=auth_registry.ca)
    data = os.urandom(3 << 20)
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    assert r.push_blob(io.BytesIO(data), d, len(data)) is True
    assert r.read_blob(d) == data

def test_token(token_registry):
    r = RegistryRepository(token_registry.host, "smoke/a", credentials=Credentials(token_registry.username, token_registry.password))
    data = os.urandom(3 << 20)
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    assert r.push_blob(io.BytesIO(data), d, len(data)) is True
    assert r.read_blob(d) == data
    print(r.auth.token_requests, token_registry.token_server.issued)
