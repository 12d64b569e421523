//! GREASE-ECH: the HPKE suite rustls needs to build a GREASE
//! encrypted_client_hello extension (draft-ietf-tls-esni §6.2), which the
//! ring provider does not ship. [`X25519_AES128`] is DHKEM(X25519,
//! HKDF-SHA256), HKDF-SHA256, AES-128-GCM — the suite Cloudflare publishes —
//! over the pure-Rust `hpke` crate (RFC 9180, base mode).
//!
//! For GREASE rustls only encapsulates to a placeholder key (the `enc` it
//! sends must look real) and fills the payload with random bytes; sealing
//! and opening are implemented in full all the same, and tested against
//! RFC 9180's vectors.

use std::sync::OnceLock;

use hpke::aead::{AeadCtxR, AeadCtxS, AesGcm128};
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::rand_core::{CryptoRng, RngCore};
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use ring::rand::{SecureRandom, SystemRandom};
use rustls::client::{EchGreaseConfig, EchMode};
use rustls::crypto::hpke::{
    EncapsulatedSecret, Hpke, HpkeOpener, HpkePrivateKey, HpkePublicKey, HpkeSealer, HpkeSuite,
};
use rustls::internal::msgs::enums::{HpkeAead, HpkeKdf, HpkeKem};
use rustls::internal::msgs::handshake::HpkeSymmetricCipherSuite;

type PublicKey = <X25519HkdfSha256 as Kem>::PublicKey;
type PrivateKey = <X25519HkdfSha256 as Kem>::PrivateKey;
type EncappedKey = <X25519HkdfSha256 as Kem>::EncappedKey;

/// DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM.
#[derive(Debug)]
pub struct X25519Aes128;

/// The one suite.
pub static X25519_AES128: X25519Aes128 = X25519Aes128;

/// The GREASE-ECH mode of a client configuration: the suite, and a
/// placeholder public key made once per process (a real server's key would
/// be one too: nobody can open what is sealed to it).
pub fn grease() -> Result<EchMode, rustls::Error> {
    static PLACEHOLDER: OnceLock<HpkePublicKey> = OnceLock::new();
    let key = match PLACEHOLDER.get() {
        Some(k) => k.clone(),
        None => {
            let (public, _) = X25519_AES128.generate_key_pair()?;
            PLACEHOLDER.get_or_init(|| public).clone()
        }
    };
    Ok(EchMode::Grease(EchGreaseConfig::new(&X25519_AES128, key)))
}

/// The operating system's randomness (ring's), as the `hpke` crate asks.
struct SystemRng(SystemRandom);

impl RngCore for SystemRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // getrandom(2) fails only on kernels older than 3.17 or before the
        // pool is seeded at boot, where it blocks instead: ring and rustls
        // treat its failure as unrecoverable too.
        self.0
            .fill(dest)
            .expect("the operating system's random number generator failed");
    }
}

impl CryptoRng for SystemRng {}

fn rng() -> SystemRng {
    SystemRng(SystemRandom::new())
}

fn err(e: hpke::HpkeError) -> rustls::Error {
    rustls::Error::General(format!("HPKE: {e}"))
}

/// A sender context.
struct Sealer(AeadCtxS<AesGcm128, HkdfSha256, X25519HkdfSha256>);

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

impl HpkeSealer for Sealer {
    fn seal(&mut self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.0.seal(plaintext, aad).map_err(err)
    }
}

/// A receiver context.
struct Opener(AeadCtxR<AesGcm128, HkdfSha256, X25519HkdfSha256>);

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Opener")
    }
}

impl HpkeOpener for Opener {
    fn open(&mut self, aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.0.open(ciphertext, aad).map_err(err)
    }
}

impl Hpke for X25519Aes128 {
    fn seal(
        &self,
        info: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        pub_key: &HpkePublicKey,
    ) -> Result<(EncapsulatedSecret, Vec<u8>), rustls::Error> {
        let (enc, mut sealer) = self.setup_sealer(info, pub_key)?;
        Ok((enc, sealer.seal(aad, plaintext)?))
    }

    fn setup_sealer(
        &self,
        info: &[u8],
        pub_key: &HpkePublicKey,
    ) -> Result<(EncapsulatedSecret, Box<dyn HpkeSealer + 'static>), rustls::Error> {
        let pk = PublicKey::from_bytes(&pub_key.0).map_err(err)?;
        let (enc, ctx) = hpke::setup_sender::<AesGcm128, HkdfSha256, X25519HkdfSha256, _>(
            &OpModeS::Base,
            &pk,
            info,
            &mut rng(),
        )
        .map_err(err)?;
        Ok((
            EncapsulatedSecret(enc.to_bytes().to_vec()),
            Box::new(Sealer(ctx)),
        ))
    }

    fn open(
        &self,
        enc: &EncapsulatedSecret,
        info: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
        secret_key: &HpkePrivateKey,
    ) -> Result<Vec<u8>, rustls::Error> {
        self.setup_opener(enc, info, secret_key)?
            .open(aad, ciphertext)
    }

    fn setup_opener(
        &self,
        enc: &EncapsulatedSecret,
        info: &[u8],
        secret_key: &HpkePrivateKey,
    ) -> Result<Box<dyn HpkeOpener + 'static>, rustls::Error> {
        let sk = PrivateKey::from_bytes(secret_key.secret_bytes()).map_err(err)?;
        let enc = EncappedKey::from_bytes(&enc.0).map_err(err)?;
        let ctx = hpke::setup_receiver::<AesGcm128, HkdfSha256, X25519HkdfSha256>(
            &OpModeR::Base,
            &sk,
            &enc,
            info,
        )
        .map_err(err)?;
        Ok(Box::new(Opener(ctx)))
    }

    fn generate_key_pair(&self) -> Result<(HpkePublicKey, HpkePrivateKey), rustls::Error> {
        let (sk, pk) = X25519HkdfSha256::gen_keypair(&mut rng());
        Ok((
            HpkePublicKey(pk.to_bytes().to_vec()),
            HpkePrivateKey::from(sk.to_bytes().to_vec()),
        ))
    }

    fn suite(&self) -> HpkeSuite {
        HpkeSuite {
            kem: HpkeKem::DHKEM_X25519_HKDF_SHA256,
            sym: HpkeSymmetricCipherSuite {
                kdf_id: HpkeKdf::HKDF_SHA256,
                aead_id: HpkeAead::AES_128_GCM,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// RFC 9180 A.1.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
    /// AES-128-GCM, base mode.
    const INFO: &str = "4f6465206f6e2061204772656369616e2055726e";
    const SK_R: &str = "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8";
    const PK_R: &str = "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d";
    const ENC: &str = "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431";
    const PT: &str = "4265617574792069732074727574682c20747275746820626561757479";
    const AAD0: &str = "436f756e742d30";
    const CT0: &str = "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a";

    #[test]
    fn opens_the_rfc_9180_vector() {
        let sk = HpkePrivateKey::from(hex(SK_R));
        let enc = EncapsulatedSecret(hex(ENC));
        let pt = X25519_AES128
            .open(&enc, &hex(INFO), &hex(AAD0), &hex(CT0), &sk)
            .expect("the vector opens");
        assert_eq!(pt, hex(PT));
        // A changed byte does not.
        let mut ct = hex(CT0);
        ct[0] ^= 1;
        assert!(
            X25519_AES128
                .open(&enc, &hex(INFO), &hex(AAD0), &ct, &sk)
                .is_err()
        );
    }

    #[test]
    fn seals_to_the_vector_key_what_its_key_opens() {
        let pk = HpkePublicKey(hex(PK_R));
        let (enc, ct) = X25519_AES128
            .seal(&hex(INFO), b"aad", b"hello", &pk)
            .expect("seals");
        assert_eq!(enc.0.len(), 32, "an X25519 public key");
        assert_eq!(ct.len(), 5 + 16, "the plaintext and a tag");
        let sk = HpkePrivateKey::from(hex(SK_R));
        let pt = X25519_AES128
            .open(&enc, &hex(INFO), b"aad", &ct, &sk)
            .expect("opens");
        assert_eq!(pt, b"hello");
        // Each seal encapsulates afresh.
        let (enc2, _) = X25519_AES128
            .seal(&hex(INFO), b"aad", b"hello", &pk)
            .expect("seals");
        assert_ne!(enc.0, enc2.0);
    }

    #[test]
    fn generated_pairs_match() {
        let (pk, sk) = X25519_AES128.generate_key_pair().expect("a pair");
        let (enc, ct) = X25519_AES128.seal(b"", b"", b"x", &pk).expect("seals");
        assert_eq!(
            X25519_AES128.open(&enc, b"", b"", &ct, &sk).expect("opens"),
            b"x"
        );
    }
}
