// Verifying a Stageflow webhook delivery in Java (17+) with the JDK alone, per the Standard
// Webhooks specification: HMAC-SHA256 over "{webhook-id}.{webhook-timestamp}.{body}" with the
// secret's bytes (the base64 after "whsec_"), compared in constant time with each "v1,"
// signature of the webhook-signature header; the timestamp must be within five minutes.
//
//   java Verify.java <secret> <delivery-dir>...
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Base64;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public class Verify {
    static final long TOLERANCE_SECONDS = 5 * 60;

    /** Whether the delivery is genuine and fresh. */
    static boolean verify(String secret, String id, String timestamp, String signatures, byte[] body)
            throws Exception {
        long sent = Long.parseLong(timestamp.trim());
        long now = System.currentTimeMillis() / 1000;
        if (Math.abs(now - sent) > TOLERANCE_SECONDS) {
            return false;
        }
        byte[] key = Base64.getDecoder().decode(secret.substring("whsec_".length()));
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(key, "HmacSHA256"));
        mac.update((id + "." + sent + ".").getBytes(StandardCharsets.UTF_8));
        byte[] expected = mac.doFinal(body);
        for (String entry : signatures.trim().split(" ")) {
            String[] parts = entry.split(",", 2);
            if (parts.length == 2 && parts[0].equals("v1")
                    && MessageDigest.isEqual(expected, Base64.getDecoder().decode(parts[1]))) {
                return true;
            }
        }
        return false;
    }

    public static void main(String[] args) throws Exception {
        String secret = args[0];
        for (int i = 1; i < args.length; i++) {
            Path dir = Path.of(args[i]);
            String id = Files.readString(dir.resolve("webhook-id"));
            String timestamp = Files.readString(dir.resolve("webhook-timestamp"));
            String signatures = Files.readString(dir.resolve("webhook-signature"));
            byte[] body = Files.readAllBytes(dir.resolve("body"));
            if (!verify(secret, id, timestamp, signatures, body)) {
                throw new IllegalStateException(dir + ": a genuine delivery was refused");
            }
            byte[] changed = new String(body, StandardCharsets.UTF_8)
                    .replace("\"type\"", "\"tyqe\"").getBytes(StandardCharsets.UTF_8);
            if (verify(secret, id, timestamp, signatures, changed)) {
                throw new IllegalStateException(dir + ": a changed body was accepted");
            }
            System.out.println(dir.getFileName() + ": genuine, and a changed body is refused");
        }
    }
}
