"""A throwaway CA and one server certificate for the topology's domains (trustme).

LBs that terminate TLS and the routers' TLS listener present the certificate; the client trusts
the CA. Nothing here is written to the host: PEMs travel to containers in environment variables.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import trustme


@dataclass(frozen=True)
class Pki:
    ca_pem: str
    server_pem: str  # certificate chain + private key in one PEM (nginx, HAProxy, Python ssl all read it)
    #: the Traffic Controller's certificate: SAN ``doppler.<system domain>`` only, the name gorouter
    #: checks (cf-deployment's route_registrar ``server_cert_domain_san``)
    tc_pem: str = ""


@lru_cache(maxsize=8)
def pki_for(system_domain: str, apps_domain: str) -> Pki:
    ca = trustme.CA()
    cert = ca.issue_cert(f"*.{system_domain}", system_domain, f"*.{apps_domain}", apps_domain)
    server = b"".join(blob.bytes() for blob in cert.cert_chain_pems) + cert.private_key_pem.bytes()
    tc = ca.issue_cert(f"doppler.{system_domain}")
    tc_pem = b"".join(blob.bytes() for blob in tc.cert_chain_pems) + tc.private_key_pem.bytes()
    return Pki(ca.cert_pem.bytes().decode(), server.decode(), tc_pem.decode())
