"""WeCom's callback crypto: the signature checked here (constant time), the AES decryption and
the corp-id check by wechatpy's `PrpCrypto` (wechatpy.enterprise.crypto).

`msg_signature` = sha1 of the sorted token, timestamp, nonce and ciphertext. The ciphertext is
AES-256-CBC (key: the 43-character EncodingAESKey + "=", base64-decoded; IV: its first 16 bytes)
of random16 + a 4-byte length + the message + the corp id, PKCS#7-padded to 32 bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from warroom.errors import CallbackRejected


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()).hexdigest()


class Crypto:
    def __init__(self, token: str, encoding_aes_key: str, corp_id: str) -> None:
        try:
            self.key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except (binascii.Error, ValueError):
            self.key = b""
        if len(self.key) != 32:
            raise ValueError("WECOM_ENCODING_AES_KEY must be the app's 43-character EncodingAESKey")
        self.token = token
        self.corp_id = corp_id

    def open(self, given: str, timestamp: str, nonce: str, encrypted: str) -> str:
        """The plaintext of `encrypted` once `given` is its signature and it names our corp."""
        expected = signature(self.token, timestamp, nonce, encrypted)
        if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
            raise CallbackRejected("bad msg_signature: not signed with WECOM_TOKEN", code="bad_signature")
        from wechatpy.enterprise.crypto import PrpCrypto
        from wechatpy.enterprise.exceptions import InvalidCorpIdException

        try:
            plain = PrpCrypto(self.key).decrypt(encrypted, self.corp_id)
        except InvalidCorpIdException:
            raise CallbackRejected("the message was encrypted for another corp", status=403,
                                   code="wrong_corp") from None  # fmt: skip
        except Exception:  # bad base64, padding or length: not WeCom's ciphertext
            raise CallbackRejected("the message cannot be decrypted with WECOM_ENCODING_AES_KEY", status=400,
                                   code="undecryptable") from None  # fmt: skip
        text = plain.decode("utf-8") if isinstance(plain, bytes) else str(plain)
        return text

    def seal(self, xml: str, nonce: str, timestamp: str) -> str:
        """A passive reply: `xml` encrypted and signed in WeCom's envelope (wechatpy's WeChatCrypto)."""
        from wechatpy.enterprise.crypto import WeChatCrypto

        key = base64.b64encode(self.key).decode().rstrip("=")
        return WeChatCrypto(self.token, key, self.corp_id).encrypt_message(xml, nonce, timestamp)
