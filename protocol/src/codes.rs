//! Stable finding codes. Dashboards and alert rules key on these strings, so a code, once
//! published, keeps its meaning; new conditions get new codes.

/// The Teams Rooms app is older than 4.0.64.0, the first version with TLS 1.2 client support.
pub const TLS12_APP_TOO_OLD: &str = "TLS12_APP_TOO_OLD";
/// The Teams Rooms app version could not be read: the app rule cannot be decided.
pub const APP_VERSION_MISSING: &str = "APP_VERSION_MISSING";
/// The Teams Rooms app version was read but is not an AppX version quad.
pub const APP_VERSION_UNPARSABLE: &str = "APP_VERSION_UNPARSABLE";
/// Teams Rooms on Android reports its own version scheme (`1449/1.0.96.2024091202`), which is
/// recognised and deliberately not compared with the Windows app's 4.0.64.0 (information only):
/// Microsoft documents no app version that TLS 1.2 depends on ("Teams Android devices use TLS
/// 1.2+").
pub const ANDROID_APP_VERSION_NOT_COMPARED: &str = "ANDROID_APP_VERSION_NOT_COMPARED";
/// Teams Rooms on Android without a known OS version: whether the OS can use TLS 1.2 (Android
/// 4.4 and later) cannot be decided.
pub const OS_NAME_MISSING: &str = "OS_NAME_MISSING";
/// Surface Hub is below OS build 15063.1835 (KB4499162): no TLS 1.2 for Skype for Business.
pub const TLS12_SURFACE_HUB_BUILD_TOO_OLD: &str = "TLS12_SURFACE_HUB_BUILD_TOO_OLD";
/// Surface Hub is below OS build 15063.1897 (KB4503289): device-account setup may still need
/// TLS 1.0/1.1 towards identity providers and Exchange.
pub const TLS12_SURFACE_HUB_SETUP_BUILD_TOO_OLD: &str = "TLS12_SURFACE_HUB_SETUP_BUILD_TOO_OLD";
/// The OS build could not be read.
pub const OS_BUILD_MISSING: &str = "OS_BUILD_MISSING";
/// The OS build was read but is not `BUILD.UBR`.
pub const OS_BUILD_UNPARSABLE: &str = "OS_BUILD_UNPARSABLE";
/// The device kind is unknown, so no device-specific rule could be applied.
pub const DEVICE_KIND_UNKNOWN: &str = "DEVICE_KIND_UNKNOWN";
/// No readiness rule applies to this device kind yet: nothing could be assessed.
pub const NO_APPLICABLE_RULE: &str = "NO_APPLICABLE_RULE";
/// The device's facts could not be collected at all (e.g. the facts file is unreadable or
/// malformed); the evidence carries the reason.
pub const FACTS_UNAVAILABLE: &str = "FACTS_UNAVAILABLE";
/// No registry source was available for a Windows device (not on Windows, no dump, no
/// `[registry]` table in the facts file): the registry rules cannot be decided.
pub const REGISTRY_UNAVAILABLE: &str = "REGISTRY_UNAVAILABLE";
/// A registry value a rule needs exists but could not be read (wrong type, access denied).
pub const REGISTRY_VALUE_UNREADABLE: &str = "REGISTRY_VALUE_UNREADABLE";
/// SCHANNEL `TLS 1.2\Client` `Enabled` is 0: the OS refuses TLS 1.2 as a client.
pub const SCHANNEL_TLS12_CLIENT_DISABLED: &str = "SCHANNEL_TLS12_CLIENT_DISABLED";
/// SCHANNEL `TLS 1.2\Client` `DisabledByDefault` is set (or TLS 1.2 is off by default on this
/// old Windows): applications get TLS 1.2 only when they ask for it explicitly.
pub const SCHANNEL_TLS12_CLIENT_DISABLED_BY_DEFAULT: &str =
    "SCHANNEL_TLS12_CLIENT_DISABLED_BY_DEFAULT";
/// WinHTTP `DefaultSecureProtocols` is set without the TLS 1.2 bit (0x800).
pub const WINHTTP_TLS12_NOT_DEFAULT: &str = "WINHTTP_TLS12_NOT_DEFAULT";
/// .NET Framework is older than 4.6.2 and neither `SchUseStrongCrypto` nor
/// `SystemDefaultTlsVersions` is set: .NET applications may still use TLS 1.0/1.1.
pub const DOTNET_TLS12_NOT_DEFAULT: &str = "DOTNET_TLS12_NOT_DEFAULT";
/// The endpoint accepts neither TLS 1.2 nor TLS 1.3.
pub const ENDPOINT_NO_TLS12: &str = "ENDPOINT_NO_TLS12";
/// The endpoint could not be reached (DNS, refused, no answer): its TLS support is unknown.
pub const ENDPOINT_UNREACHABLE: &str = "ENDPOINT_UNREACHABLE";
/// The endpoint accepts TLS 1.2 but no suite on the Office 365 or the Azure Front Door list: a
/// hello offering exactly those was refused.
pub const ENDPOINT_SUITE_NOT_IN_M365_LISTS: &str = "ENDPOINT_SUITE_NOT_IN_M365_LISTS";
/// The endpoint's certificate chain does not verify (expired, untrusted, wrong name).
pub const ENDPOINT_CERT_INVALID: &str = "ENDPOINT_CERT_INVALID";
/// The endpoint's certificate expires within 14 days.
pub const ENDPOINT_CERT_EXPIRING: &str = "ENDPOINT_CERT_EXPIRING";
/// The endpoint accepted a version but no certificate could be read from any handshake (e.g. it
/// chose a suite without one): its certificate, and so its readiness, is unknown.
pub const ENDPOINT_CERT_UNAVAILABLE: &str = "ENDPOINT_CERT_UNAVAILABLE";
/// The endpoint asks for a client certificate: devices need one to connect (information; its
/// versions and certificate were still checked).
pub const ENDPOINT_CLIENT_CERT_REQUIRED: &str = "ENDPOINT_CLIENT_CERT_REQUIRED";
/// The endpoint refused TLS 1.2 and 1.3 in a way that may be about the server name, not the
/// version: probed by IP address without SNI, or it answered `unrecognized_name`. Its TLS 1.2
/// support is unknown until it is probed by the name it serves.
pub const ENDPOINT_NEEDS_SERVER_NAME: &str = "ENDPOINT_NEEDS_SERVER_NAME";
/// Whether the endpoint accepts a suite on Microsoft's TLS 1.2 lists could not be asked (no
/// answer to the hello offering exactly those).
pub const ENDPOINT_SUITES_UNKNOWN: &str = "ENDPOINT_SUITES_UNKNOWN";
/// An on-premises Skype for Business pool states a version Microsoft's TLS 1.2 guidance does not
/// cover (e.g. Lync Server 2013, 5.0.x): whether it can use TLS 1.2 is unknown.
pub const SFB_VERSION_NOT_COVERED: &str = "SFB_VERSION_NOT_COVERED";
/// An on-premises Skype for Business pool is below 2015 CU9 / 2019 CU1 and TLS 1.0/1.1 is
/// already refused: Teams Rooms and Surface Hub cannot use it over TLS 1.2.
pub const SFB_CU_MISSING: &str = "SFB_CU_MISSING";
/// An on-premises Skype for Business pool is below its CU while TLS 1.0/1.1 is still accepted:
/// install the CU before disabling them.
pub const SFB_CU_MISSING_BEFORE_TLS_CUTOFF: &str = "SFB_CU_MISSING_BEFORE_TLS_CUTOFF";
/// The device's OS is on Microsoft's list of clients unable to use TLS 1.2 (Android 4.3 and
/// earlier, Windows Phone 8, OS X 10.8.4 and earlier).
pub const CLIENT_OS_WITHOUT_TLS12: &str = "CLIENT_OS_WITHOUT_TLS12";
/// This device negotiated SSL or TLS 1.0/1.1 recently, as Schannel logged it (event 36880): a
/// component still talks legacy TLS, whatever the prediction says (at_risk).
pub const OBSERVED_LEGACY_TLS: &str = "OBSERVED_LEGACY_TLS";
/// Schannel does not log successful handshakes (`EventLogging` without bit 0x4), so there is no
/// evidence of what the device negotiates (information only).
pub const SCHANNEL_EVENT_LOGGING_OFF: &str = "SCHANNEL_EVENT_LOGGING_OFF";
/// Schannel's events could not be read, wholly or in part (information only).
pub const SCHANNEL_EVENTS_UNREADABLE: &str = "SCHANNEL_EVENTS_UNREADABLE";
/// TLS handshakes failed recently (Schannel events 36874, 36887, 36888; information only).
pub const OBSERVED_HANDSHAKE_FAILURES: &str = "OBSERVED_HANDSHAKE_FAILURES";

/// Teams Rooms on Android states an `os_name` that is not an Android version (`Android 12`):
/// whether its OS can use TLS 1.2, and whether Microsoft supports it, cannot be decided.
pub const OS_NAME_UNPARSABLE: &str = "OS_NAME_UNPARSABLE";
/// Teams Rooms on Android runs an Android older than every version Microsoft supports on it
/// (Android 9 to 14), though not one unable to use TLS 1.2 (4.4 to 8.x).
pub const ANDROID_OS_NOT_SUPPORTED: &str = "ANDROID_OS_NOT_SUPPORTED";
/// Teams Rooms on Android runs an Android that Microsoft supports on it; the finding states the
/// documented end of its Teams certification and of best-effort support (information only).
pub const ANDROID_OS_SUPPORT_DATES: &str = "ANDROID_OS_SUPPORT_DATES";
/// Teams Rooms on Android runs an Android newer than Microsoft's support table: the docs say
/// nothing about its support dates (information only; it can use TLS 1.2).
pub const ANDROID_OS_SUPPORT_NOT_DOCUMENTED: &str = "ANDROID_OS_SUPPORT_NOT_DOCUMENTED";

/// Every code above, for validating a code given by name (scenario files, dashboards).
pub const ALL: &[&str] = &[
    TLS12_APP_TOO_OLD,
    APP_VERSION_MISSING,
    APP_VERSION_UNPARSABLE,
    ANDROID_APP_VERSION_NOT_COMPARED,
    OS_NAME_MISSING,
    TLS12_SURFACE_HUB_BUILD_TOO_OLD,
    TLS12_SURFACE_HUB_SETUP_BUILD_TOO_OLD,
    OS_BUILD_MISSING,
    OS_BUILD_UNPARSABLE,
    DEVICE_KIND_UNKNOWN,
    NO_APPLICABLE_RULE,
    FACTS_UNAVAILABLE,
    REGISTRY_UNAVAILABLE,
    REGISTRY_VALUE_UNREADABLE,
    SCHANNEL_TLS12_CLIENT_DISABLED,
    SCHANNEL_TLS12_CLIENT_DISABLED_BY_DEFAULT,
    WINHTTP_TLS12_NOT_DEFAULT,
    DOTNET_TLS12_NOT_DEFAULT,
    ENDPOINT_NO_TLS12,
    ENDPOINT_UNREACHABLE,
    ENDPOINT_SUITE_NOT_IN_M365_LISTS,
    ENDPOINT_CERT_INVALID,
    ENDPOINT_CERT_EXPIRING,
    ENDPOINT_CERT_UNAVAILABLE,
    ENDPOINT_CLIENT_CERT_REQUIRED,
    ENDPOINT_NEEDS_SERVER_NAME,
    ENDPOINT_SUITES_UNKNOWN,
    SFB_VERSION_NOT_COVERED,
    SFB_CU_MISSING,
    SFB_CU_MISSING_BEFORE_TLS_CUTOFF,
    CLIENT_OS_WITHOUT_TLS12,
    OBSERVED_LEGACY_TLS,
    SCHANNEL_EVENT_LOGGING_OFF,
    SCHANNEL_EVENTS_UNREADABLE,
    OBSERVED_HANDSHAKE_FAILURES,
    OS_NAME_UNPARSABLE,
    ANDROID_OS_NOT_SUPPORTED,
    ANDROID_OS_SUPPORT_DATES,
    ANDROID_OS_SUPPORT_NOT_DOCUMENTED,
];
