// CrlCheck: validates one end-entity certificate with Java's PKIX CertPathValidator and its
// PKIXRevocationChecker, using CRLs only (no OCSP, no download): the relying party's view of
// vigie's CRLs, from an implementation vigie did not write (tests/crl_scope.rs runs it).
//
// Usage: java CrlCheck ROOTS.pem ISSUER.pem LEAF.pem CRL.der [CRL.der ...]
//
// Prints one line and exits with:
//   0  "good"                          the path validates, the CRLs say not revoked
//   2  "revoked: ..."                  a CRL lists the certificate (BasicReason.REVOKED)
//   3  "undetermined: ..."             no CRL in scope (BasicReason.UNDETERMINED_REVOCATION_STATUS)
//   1  anything else (message printed)
//
// Only the end entity is checked (Option.ONLY_END_ENTITY): the test PKI publishes no CRL of the
// roots. PREFER_CRLS + NO_FALLBACK: CRLs, never OCSP. CRL distribution points are not fetched
// (com.sun.security.enableCRLDP stays false): only the CRLs given here are used, and each is
// applied only if it is in the certificate's scope (RFC 5280 §6.3.3 (b)(2), checked by
// sun.security.provider.certpath.DistributionPointFetcher). Java does not use delta CRLs: a
// CRL with the critical DeltaCRLIndicator is set aside as having an unsupported critical
// extension.
import java.io.FileInputStream;
import java.io.InputStream;
import java.security.cert.CertPath;
import java.security.cert.CertPathValidator;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.CollectionCertStoreParameters;
import java.security.cert.PKIXParameters;
import java.security.cert.PKIXReason;
import java.security.cert.PKIXRevocationChecker;
import java.security.cert.TrustAnchor;
import java.security.cert.X509CRL;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

public class CrlCheck {
    public static void main(String[] args) throws Exception {
        if (args.length < 4) {
            System.out.println("usage: CrlCheck ROOTS.pem ISSUER.pem LEAF.pem CRL.der [CRL.der ...]");
            System.exit(1);
        }
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        Set<TrustAnchor> anchors = new HashSet<>();
        try (InputStream in = new FileInputStream(args[0])) {
            for (Certificate c : cf.generateCertificates(in)) {
                anchors.add(new TrustAnchor((X509Certificate) c, null));
            }
        }
        X509Certificate issuer;
        try (InputStream in = new FileInputStream(args[1])) {
            issuer = (X509Certificate) cf.generateCertificate(in);
        }
        X509Certificate leaf;
        try (InputStream in = new FileInputStream(args[2])) {
            leaf = (X509Certificate) cf.generateCertificate(in);
        }
        Collection<Object> store = new ArrayList<>();
        store.add(issuer);
        for (int i = 3; i < args.length; i++) {
            try (InputStream in = new FileInputStream(args[i])) {
                store.add((X509CRL) cf.generateCRL(in));
            }
        }
        List<Certificate> chain = new ArrayList<>();
        chain.add(leaf);
        chain.add(issuer);
        CertPath path = cf.generateCertPath(chain);

        CertPathValidator validator = CertPathValidator.getInstance("PKIX");
        PKIXRevocationChecker rc = (PKIXRevocationChecker) validator.getRevocationChecker();
        rc.setOptions(EnumSet.of(
                PKIXRevocationChecker.Option.PREFER_CRLS,
                PKIXRevocationChecker.Option.NO_FALLBACK,
                PKIXRevocationChecker.Option.ONLY_END_ENTITY));
        PKIXParameters params = new PKIXParameters(anchors);
        params.setRevocationEnabled(true);
        params.addCertPathChecker(rc);
        params.addCertStore(CertStore.getInstance("Collection", new CollectionCertStoreParameters(store)));
        try {
            validator.validate(path, params);
            System.out.println("good");
            System.exit(0);
        } catch (CertPathValidatorException e) {
            CertPathValidatorException.Reason r = e.getReason();
            if (r == CertPathValidatorException.BasicReason.REVOKED) {
                System.out.println("revoked: " + e.getMessage());
                System.exit(2);
            }
            if (r == CertPathValidatorException.BasicReason.UNDETERMINED_REVOCATION_STATUS) {
                System.out.println("undetermined: " + e.getMessage());
                System.exit(3);
            }
            System.out.println("failed (" + r + "): " + e.getMessage());
            System.exit(1);
        }
    }
}
