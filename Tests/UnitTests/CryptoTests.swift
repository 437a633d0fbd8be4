import CryptoSupport
import XCTest

final class CryptoTests: XCTestCase {
    let key = (0..<32).map { UInt8($0) }

    // MARK: AES-GCM

    func testSealOpenRoundTrip() throws {
        let plaintext = Array("warehouse password: s3cr3t ✓".utf8)
        let sealed = try Crypto.seal(plaintext, key: key)
        XCTAssertEqual(sealed.count, 12 + plaintext.count + 16)
        XCTAssertNil(sealed.firstRange(of: plaintext), "ciphertext must not contain the plaintext")
        XCTAssertEqual(try Crypto.open(sealed, key: key), plaintext)
    }

    func testEmptyPlaintext() throws {
        let sealed = try Crypto.seal([], key: key)
        XCTAssertEqual(sealed.count, 28)
        XCTAssertEqual(try Crypto.open(sealed, key: key), [])
    }

    func testNonceIsFresh() throws {
        let a = try Crypto.seal(Array("same".utf8), key: key)
        let b = try Crypto.seal(Array("same".utf8), key: key)
        XCTAssertNotEqual(a, b)
        XCTAssertNotEqual(Array(a[0..<12]), Array(b[0..<12]))
    }

    func testTamperingFails() throws {
        let sealed = try Crypto.seal(Array("attack at dawn".utf8), key: key)
        for index in [0, 12, sealed.count - 17, sealed.count - 1] {  // nonce, ciphertext, tag
            var tampered = sealed
            tampered[index] ^= 0x80
            XCTAssertThrowsError(try Crypto.open(tampered, key: key), "flipping byte \(index)")
        }
        XCTAssertThrowsError(try Crypto.open(Array(sealed.dropLast()), key: key))
        XCTAssertThrowsError(try Crypto.open(Array(sealed.prefix(27)), key: key))
    }

    func testWrongKeyFails() throws {
        let sealed = try Crypto.seal(Array("attack at dawn".utf8), key: key)
        var other = key
        other[31] ^= 1
        XCTAssertThrowsError(try Crypto.open(sealed, key: other))
    }

    func testBadKeyLengthIsRefused() {
        XCTAssertThrowsError(try Crypto.seal([1, 2, 3], key: Array(key.prefix(16))))
        XCTAssertThrowsError(try Crypto.open(Array(repeating: 0, count: 40), key: Array(key.prefix(31))))
    }

    // MARK: hashes and KDF (published test vectors)

    func testSHA256Vector() {
        XCTAssertEqual(Encoding.hex(Crypto.sha256(Array("abc".utf8))),
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(Encoding.hex(Crypto.sha256([])),
                       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    func testHMACSHA256Vector() {
        // RFC 4231 test case 2.
        XCTAssertEqual(Encoding.hex(Crypto.hmacSHA256(key: Array("Jefe".utf8), data: Array("what do ya want for nothing?".utf8))),
                       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    func testPBKDF2Vector() throws {
        let derived = try Crypto.pbkdf2SHA256(password: Array("password".utf8), salt: Array("salt".utf8), iterations: 1)
        XCTAssertEqual(Encoding.hex(derived), "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b")
        let two = try Crypto.pbkdf2SHA256(password: Array("password".utf8), salt: Array("salt".utf8), iterations: 2)
        XCTAssertEqual(Encoding.hex(two), "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43")
    }

    func testRandomBytes() {
        let a = Crypto.randomBytes(32)
        XCTAssertEqual(a.count, 32)
        XCTAssertNotEqual(a, Crypto.randomBytes(32))
    }

    // MARK: constantTimeEqual

    func testConstantTimeEqual() {
        XCTAssertTrue(Crypto.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        XCTAssertTrue(Crypto.constantTimeEqual([], []))
        XCTAssertFalse(Crypto.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        XCTAssertFalse(Crypto.constantTimeEqual([0, 2, 3], [1, 2, 3]))
        XCTAssertFalse(Crypto.constantTimeEqual([1, 2, 3], [1, 2]))
        XCTAssertFalse(Crypto.constantTimeEqual([1, 2], [1, 2, 3]))
    }

    // MARK: Encoding

    func testBase64URLRoundTrip() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 37 + 250) }
            let text = Encoding.base64URL(bytes)
            XCTAssertFalse(text.contains("="))
            XCTAssertFalse(text.contains("+"))
            XCTAssertFalse(text.contains("/"))
            XCTAssertEqual(Encoding.base64URLDecode(Substring(text)), bytes, "length \(length)")
        }
    }

    func testBase64URLAlphabet() {
        XCTAssertEqual(Encoding.base64URL([0xFB, 0xFF, 0xBF]), "-_-_")
        XCTAssertEqual(Encoding.base64URLDecode("-_-_"), [0xFB, 0xFF, 0xBF])
        XCTAssertEqual(Encoding.base64URL(Array("hi".utf8)), "aGk")
    }

    func testBase64URLRejectsInvalidInput() {
        XCTAssertNil(Encoding.base64URLDecode("+/+/"), "standard alphabet is not base64url")
        XCTAssertNil(Encoding.base64URLDecode("aGk="), "padding is not accepted")
        XCTAssertNil(Encoding.base64URLDecode("a"), "a single trailing character cannot encode a byte")
        XCTAssertNil(Encoding.base64URLDecode("ab cd"))
        XCTAssertNil(Encoding.base64URLDecode("abc\n"))
        XCTAssertNil(Encoding.base64URLDecode("ÿÿÿÿ"))
        XCTAssertNil(Encoding.base64URLDecode("abcd!"))
    }

    func testHexRoundTrip() {
        let bytes: [UInt8] = [0x00, 0x01, 0x7F, 0x80, 0xAB, 0xFF]
        XCTAssertEqual(Encoding.hex(bytes), "00017f80abff")
        XCTAssertEqual(Encoding.fromHex("00017f80abff"), bytes)
        XCTAssertEqual(Encoding.fromHex("00017F80ABFF"), bytes)
        XCTAssertEqual(Encoding.fromHex(""), [])
    }

    func testHexRejectsInvalidInput() {
        XCTAssertNil(Encoding.fromHex("abc"))
        XCTAssertNil(Encoding.fromHex("zz"))
        XCTAssertNil(Encoding.fromHex("0g"))
        XCTAssertNil(Encoding.fromHex("0x00"))
        XCTAssertNil(Encoding.fromHex(" 00"))
    }

    func testRandomToken() {
        let token = Encoding.randomToken()
        XCTAssertEqual(token.count, 43)
        XCTAssertEqual(Encoding.base64URLDecode(Substring(token))?.count, 32)
        XCTAssertNotEqual(token, Encoding.randomToken())
    }
}
