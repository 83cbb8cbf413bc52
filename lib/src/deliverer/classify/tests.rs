use super::Action::{Defer, Reject};
use super::Category::*;
use super::*;
use crate::deliverer::smtp;

/// Reply lines as providers publish them in their own error
/// documentation (addresses and IPs replaced by example ones), and what
/// they must mean. Lines of a multi-line reply are joined by CRLF. One
/// row a line, as a table reads best.
#[rustfmt::skip]
const TABLE: &[(&str, Action, Category)] = &[
    // Gmail / Google Workspace: "Gmail SMTP errors and codes".
    ("450 4.2.1 The user you are trying to contact is receiving email too quickly. Please resend your message at a later time. If the user is able to receive email at that time, your message will be delivered.", Defer, Capacity),
    ("452 4.2.2 The recipient's inbox is out of storage space. Please direct the recipient to Manage files in your Google Drive storage.", Defer, Full),
    ("421 4.3.0 Temporary System Problem. Try again later.", Defer, Capacity),
    ("451 4.4.2 Timeout - closing connection.", Defer, Network),
    ("421 4.4.5 Server busy, try again later.", Defer, Capacity),
    ("451 4.5.0 SMTP protocol violation.", Defer, Protocol),
    ("452 4.5.3 Your message has too many recipients.", Defer, Capacity),
    ("421 4.7.0 TLS required for RCPT domain, closing connection.", Defer, Tls),
    ("421 4.7.0 This message is suspicious due to the very low reputation of the sending IP address. To protect our users from spam, email sent from your IP address has been temporarily rate limited.", Defer, Blocklist),
    ("421 4.7.0 This message is suspicious due to the nature of the content or the links within. To best protect our users from spam, the message has been blocked.", Defer, Spam),
    ("421 4.7.0 The IP address sending this message does not have a PTR record, or the corresponding forward DNS entry does not point to the sending IP. To protect our users from spam, email sent from your IP address has been temporarily rate limited.", Defer, Policy),
    ("451 4.7.24 The SPF record of the sending domain has one or more suspicious entries. To protect our users from spam, email sent from your IP address has been temporarily rate limited.", Defer, Dmarc),
    ("421 4.7.26 This email has been rate limited because it is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM.", Defer, Dmarc),
    ("421 4.7.28 Gmail has detected an unusual rate of unsolicited email originating from your IP Netblock 192.0.2.0/24. To protect our users from spam, email sent from your IP Netblock has been temporarily rate limited.", Defer, Capacity),
    ("421 4.7.29 Your email has been rate limited because you're not using a TLS connection. Gmail requires all bulk email senders to use TLS/SSL for SMTP connections.", Defer, Tls),
    ("550 5.1.1 The email account that you tried to reach does not exist. Please double-check the recipient's email address for typos or unnecessary spaces.", Reject, Recipient),
    ("553 5.1.2 We weren't able to find the recipient domain. Please check for any spelling errors and make sure you didn't enter any spaces, periods, or other punctuation after the recipient's email address.", Reject, Recipient),
    ("553 5.1.3 The recipient address <someone..@example.com> is not a valid RFC 5321 address.", Reject, Recipient),
    ("553 5.1.7 The sender address <sender..@example.org> is not a valid RFC 5321 address.", Reject, Policy),
    ("550 5.2.1 The email account that you tried to reach is inactive.", Reject, Recipient),
    ("550 5.2.1 The user you are trying to contact is receiving email at a rate that prevents additional messages from being delivered.", Defer, Capacity),
    ("552 5.2.2 The recipient's inbox is out of storage space and inactive. Please direct the recipient to Manage files in your Google Drive storage.", Defer, Full),
    ("552 5.3.4 Your message exceeded Google's message size limits.", Reject, Size),
    ("552 5.3.4 The number of attachments (600) exceeds Google's limit of 500 attachments.", Reject, Size),
    ("550 5.4.5 Daily user sending limit exceeded.", Defer, Capacity),
    ("554 5.4.6 Message exceeded 50 hops, this may indicate an email loop.", Reject, Other),
    ("503 5.5.1 Bad sequence of commands.", Reject, Protocol),
    ("550 5.5.3 Too many recipients for this sender.", Defer, Capacity),
    ("554 5.6.0 Email message is malformed. Not accepted.", Reject, Protocol),
    ("552 5.7.0 This message was blocked because its content presents a potential security issue.", Reject, Virus),
    ("530 5.7.0 Must issue a STARTTLS command first.", Defer, Tls),
    ("530 5.7.0 Authentication required.", Reject, Policy),
    ("550 5.7.0 Email relay denied 192.0.2.1. The sending email account has been temporarily suspended due to abuse.", Defer, Policy),
    ("550 5.7.1 The user or domain that you are sending to (or from) has a policy that prohibits the email that you sent.", Reject, Policy),
    ("550 5.7.1 This message is likely unsolicited email. To reduce the amount of spam sent to Gmail, this message has been blocked.", Reject, Spam),
    ("550 5.7.1 This message is likely suspicious due to the very low reputation of the sending domain. To best protect our users from spam, the message has been blocked.", Defer, Blocklist),
    ("550 5.7.1 Messages missing a valid address in the From: header, or having no From: header, are not accepted.", Reject, Policy),
    ("550 5.7.1 This message is not RFC 5322 compliant because it has duplicate headers. To reduce the amount of spam sent to Gmail, this message has been blocked.", Reject, Protocol),
    ("550 5.7.1 The IP you're using to send email is not authorized to send email directly to our servers. Use the SMTP relay at your service provider instead.", Defer, Blocklist),
    ("550 5.7.25 This message was blocked because the sending IP address doesn't have a PTR record, or the forwarding DNS entry doesn't reference the sending IP address.", Reject, Policy),
    ("550 5.7.26 Unauthenticated email from example.org is not accepted due to domain's DMARC policy. Contact the administrator of example.org domain if this was legitimate email.", Reject, Dmarc),
    ("550 5.7.26 This email has been blocked because the sender is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM.", Reject, Dmarc),
    ("550 5.7.27 This message was blocked because it didn't pass SPF authentication. Gmail requires bulk email senders to authenticate their email with SPF.", Reject, Dmarc),
    ("550 5.7.28 There is an unusual rate of unsolicited email originating from your IP address. To protect our users from spam, email sent from your IP address has been blocked.", Defer, Blocklist),
    ("550 5.7.30 This message was blocked because it didn't pass DKIM authentication. Gmail requires bulk email senders to authenticate their email with DKIM.", Reject, Dmarc),
    // Gmail, as a relay's log shows it: one reply of six lines.
    ("550-5.7.1 [192.0.2.1 1] Our system has detected an unusual rate of\r\n550-5.7.1 unsolicited mail originating from your IP address. To protect our\r\n550-5.7.1 users from spam, mail sent from your IP address has been blocked.\r\n550-5.7.1 Please visit\r\n550-5.7.1 https://support.google.com/mail/?p=UnsolicitedIPError to review our\r\n550 5.7.1 Bulk Email Senders Guidelines. s25si6573124wmj.54 - gsmtp", Defer, Blocklist),
    // Microsoft: Outlook.com postmaster and Exchange Online NDRs.
    ("550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.", Defer, Blocklist),
    ("550 5.4.1 Recipient address rejected: Access denied. AS(201806281) [AM0PR01MB1234.eurprd01.prod.exchangelabs.com]", Reject, Recipient),
    ("451 4.7.500 Server busy. Please try again later from [192.0.2.1]. (S77714) [AM0PR01MB1234.eurprd01.prod.exchangelabs.com]", Defer, Capacity),
    ("550 5.7.606 Access denied, banned sending IP [192.0.2.1]. To request removal from this list please visit https://sender.office.com/ and follow the directions.", Defer, Blocklist),
    ("550 5.7.509 Access denied, sending domain example.org does not pass DMARC verification and has a DMARC policy of reject.", Reject, Dmarc),
    ("550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", Reject, Recipient),
    ("550 5.7.515 Mail rejected by Outlook.com for policy reasons. Messages from domains sending over 5,000 emails per day to Outlook.com accounts must be authenticated with SPF, DKIM, and DMARC (p=none or p=reject) to be accepted.", Reject, Dmarc),
    ("421 RP-001 The mail server IP connecting to Outlook.com server has exceeded the rate limit allowed. Reason for rate limitation is related to IP/domain reputation.", Defer, Blocklist),
    ("421 RP-003 The mail server IP connecting to Outlook.com server has exceeded the connection limit allowed. Reason for limitation is related to IP/domain reputation.", Defer, Blocklist),
    ("550 SC-004 Mail rejected by Outlook.com for policy reasons. A block has been placed against your IP address because we have received complaints concerning mail coming from that IP address.", Defer, Blocklist),
    ("550 DY-001 Mail rejected by Outlook.com for policy reasons. We generally do not accept email from dynamic IP's as they are not typically used to deliver unauthenticated SMTP email to an Internet mail server. For more information, Spamhaus maintains lists of dynamic and residential IP addresses.", Defer, Blocklist),
    ("550 DY-002 Mail rejected by Outlook.com for policy reasons. The likely cause is a compromised or virus infected server/personal computer.", Defer, Blocklist),
    ("552 5.3.4 Message size exceeds fixed maximum message size", Reject, Size),
    ("550 5.7.1 RESOLVER.RST.NotAuthorized; not authorized", Reject, Policy),
    // Yahoo / AOL: Sender Hub "SMTP error codes".
    ("421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes", Defer, Capacity),
    ("553 5.7.1 [BL21] Connections will not be accepted from 192.0.2.1, because the ip is in Spamhaus's list; see https://postmaster.yahooinc.com/error-codes", Defer, Blocklist),
    ("554 5.7.9 Message not accepted for policy reasons. See https://postmaster.yahooinc.com/error-codes", Reject, Policy),
    ("421 4.7.1 [TS03] All messages from 192.0.2.1 will be permanently deferred; Retrying will NOT succeed. See https://postmaster.yahooinc.com/error-codes", Defer, Policy),
    ("451 Resources temporarily unavailable. Please try again later [#4.16.1].", Defer, Capacity),
    ("554 delivery error: dd This user doesn't have a yahoo.com account (someone@yahoo.com) [-5] - mta123.mail.mud.yahoo.com", Reject, Recipient),
    ("421 Max message per connection reached, closing transmission channel", Defer, Capacity),
    ("450 User is receiving mail too quickly", Defer, Capacity),
    // Apple iCloud Mail.
    ("550 5.1.1 <someone@icloud.com>: user does not exist", Reject, Recipient),
    ("550 5.7.1 [CS01] Message rejected due to local policy. Please visit https://support.apple.com/en-us/HT204137", Reject, Policy),
    ("421 4.7.1 Messages to someone@icloud.com deferred due to excessive volume. Try again later - https://support.apple.com/en-us/HT204137", Defer, Capacity),
    ("451 4.7.1 Service unavailable - try again later", Defer, Policy),
    ("550 5.7.1 Your message was rejected due to example.org DMARC policy.", Reject, Dmarc),
    ("550 5.7.1 Your email was rejected due to having a domain present in the Spamhaus DBL -- see https://www.spamhaus.org/dbl/", Reject, Spam),
    // GMX / WEB.DE (United Internet): postmaster error pages.
    ("554-gmx.net (mxgmx104) Nemesis ESMTP Service not available\r\n554-No SMTP service\r\n554-IP address is block listed.\r\n554 For explanation visit https://postmaster.gmx.net/en/case?c=r0201&i=ip&v=198.51.100.42&r=1MNcgj-1ue23t3pyV-00S2YR", Defer, Blocklist),
    ("550 <someone@gmx.net>: Reject due to SPF policy. The originating IP of the message is not permitted by the domain owner", Reject, Dmarc),
    ("550 <someone@web.de>: Requested action not taken: mailbox unavailable", Reject, Recipient),
    // Comcast / Xfinity postmaster.
    ("554 BL000000 Email from your mail server has been sent in patterns that are characteristic of spam.", Defer, Blocklist),
    ("421 Too many sessions opened", Defer, Capacity),
    ("421 Reverse DNS failure : Try again later", Defer, Policy),
    // Yandex Mail: non-delivery report help pages.
    ("554 5.7.1 Message rejected under suspicion of SPAM", Reject, Spam),
    ("550 5.7.1 Policy rejection on the target address", Reject, Recipient),
    ("552 5.2.2 Mailbox size limit exceeded", Defer, Full),
    ("554 5.7.1 Message infected by virus", Reject, Virus),
    ("550 5.7.1 SPF check failed: 192.0.2.1 is not authorized to send in the name of domain example.org.", Reject, Dmarc),
    // Zoho Mail.
    ("550 5.1.1 <someone@zoho.com> User unknown", Reject, Recipient),
    ("552 5.7.1 virus EICAR-Test-File detected by Zoho Mail", Reject, Virus),
    ("550 5.7.1 Email rejected per DMARC policy for example.org", Reject, Dmarc),
    ("452 4.3.1 Temporary System Error", Defer, Capacity),
    // DNSBL rejections: Spamhaus, Barracuda, SpamCop (Postfix reject_rbl_client).
    ("554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.1", Defer, Blocklist),
    ("554 Service unavailable; Client host [192.0.2.1] blocked using Barracuda Reputation; http://www.barracudanetworks.com/reputation/?pr=1&ip=192.0.2.1", Defer, Blocklist),
    ("550 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using bl.spamcop.net; Blocked - see https://www.spamcop.net/bl.shtml?192.0.2.1", Defer, Blocklist),
    ("554 IP found in Spamcop Black List. Visit spamcop.net for more information", Defer, Blocklist),
    ("550 cuda_nsu 5.1.1 <someone@example.com> Recipient address rejected: User unknown", Reject, Recipient),
    // Postfix defaults.
    ("450 4.2.0 <someone@example.com>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.com.html", Defer, Greylist),
    ("452 4.2.2 Mailbox full", Defer, Full),
    ("550 5.1.1 <someone@example.com>: Recipient address rejected: User unknown in virtual mailbox table", Reject, Recipient),
    ("554 5.7.1 <someone@example.com>: Relay access denied", Reject, Policy),
    ("450 4.7.1 Client host rejected: cannot find your reverse hostname, [192.0.2.1]", Defer, Policy),
    ("552 5.3.4 Message size exceeds fixed limit", Reject, Size),
    ("452 4.3.1 Insufficient system storage", Defer, Capacity),
    ("421 4.7.0 mx.example.com Error: too many connections from 192.0.2.1", Defer, Capacity),
    ("554 5.7.1 <sender@example.org>: Sender address rejected: Access denied", Reject, Policy),
    ("450 4.1.2 <someone@example.invalid>: Recipient address rejected: Domain not found", Defer, Dns),
    ("550 5.3.2 Service currently unavailable", Defer, Capacity),
    ("451 4.7.1 Greylisting in action, please come back later", Defer, Greylist),
    // Exim defaults.
    ("550 Unrouteable address", Reject, Recipient),
    ("550 Administrative prohibition", Reject, Policy),
    ("451 Temporary local problem - please try later", Defer, Other),
    ("550 This message contains a virus (Eicar-Test-Signature).", Reject, Virus),
    ("550-Verification failed for <sender@example.org>\r\n550-Unrouteable address\r\n550 Sender verify failed", Reject, Policy),
    ("552 Message size exceeds maximum permitted", Reject, Size),
    // Sendmail defaults.
    ("550 5.1.1 <someone@example.com>... User unknown", Reject, Recipient),
    ("550 5.7.1 <someone@example.com>... Relaying denied", Reject, Policy),
    ("553 5.1.8 <sender@example.org>... Domain of sender address sender@example.org does not exist", Reject, Policy),
    ("452 4.4.5 Insufficient disk space; try again later", Defer, Capacity),
];

/// A reply line as the client reads it: `smtp::read_reply`, the lines'
/// text joined with a space, the enhanced code from its first word.
fn verdict(line: &str) -> Verdict {
    let wire = format!("{line}\r\n");
    let reply = smtp::read_reply(&mut wire.as_bytes()).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    let text = reply.lines.join(" ");
    classify(&Failure::from_reply(reply.code, &text))
}

fn class_of(action: Action) -> u8 {
    match action {
        Defer => 4,
        Reject => 5,
    }
}

#[test]
fn provider_replies() {
    assert!(TABLE.len() >= 60, "{} rows", TABLE.len());
    let mut wrong = Vec::new();
    for &(line, action, category) in TABLE {
        let v = verdict(line);
        if (v.action, v.category) != (action, category) {
            wrong.push(format!(
                "{line:?}\n    want {action} {category}, got {} {}",
                v.action, v.category
            ));
        }
        assert_eq!(v.status.class(), class_of(v.action), "{line:?}");
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn recorded_status_keeps_subject_and_detail() {
    for &(line, _, _) in TABLE {
        let v = verdict(line);
        let given = line
            .get(4..)
            .and_then(|t| t.split_whitespace().next())
            .and_then(Status::parse)
            .filter(|s| s.class() != 2 && s.with_class(5) != status::PERMANENT);
        if let Some(given) = given {
            assert_eq!(v.status, given.with_class(class_of(v.action)), "{line:?}");
        }
    }
}

#[test]
fn class_follows_the_action() {
    // A 5xx that defers is recorded as 4.x.x.
    let v = verdict("550 5.2.2 mailbox full");
    assert_eq!((v.action, v.category), (Defer, Full));
    assert_eq!(v.status.to_string(), "4.2.2");
    let v = verdict(
        "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
    );
    assert_eq!(v.status.to_string(), "4.7.1");
    // A 4xx stays 4.x.x, and a 5xx that rejects keeps the server's code.
    assert_eq!(
        verdict("452 4.2.2 Mailbox full").status.to_string(),
        "4.2.2"
    );
    assert_eq!(
        verdict("550 5.1.1 no such user").status,
        status::NO_SUCH_MAILBOX
    );
    // Nothing turns a 4xx into a bounce, whatever its words.
    let v = verdict("450 4.1.1 <someone@example.com>: Recipient address rejected: User unknown");
    assert_eq!((v.action, v.category), (Defer, Recipient));
    assert_eq!(v.status.to_string(), "4.1.1");
    // Without an enhanced code (or with x.0.0) the category's code.
    assert_eq!(
        verdict("552 mailbox is full").status,
        status::MAILBOX_FULL.with_class(4)
    );
    assert_eq!(
        verdict("550 5.0.0 User unknown").status,
        status::NO_SUCH_MAILBOX
    );
    assert_eq!(verdict("550 5.0.0 go away").status, status::PERMANENT);
    assert_eq!(verdict("451 try later").status, status::TRANSIENT);
    // A 5xx that asks to be retried defers.
    let v = verdict("554 5.7.1 Please try again later");
    assert_eq!((v.action, v.status.to_string().as_str()), (Defer, "4.7.1"));
}

#[test]
fn every_network_kind_defers() {
    let cases = [
        (NetworkKind::Refused, Network, status::BAD_CONNECTION),
        (NetworkKind::Timeout, Network, status::BAD_CONNECTION),
        (NetworkKind::Closed, Network, status::BAD_CONNECTION),
        (NetworkKind::Unreachable, Network, status::BAD_CONNECTION),
        (NetworkKind::Dns, Dns, status::DNS_FAILURE),
        (NetworkKind::Tls, Tls, status::POLICY.with_class(4)),
        (NetworkKind::Protocol, Protocol, status::PROTOCOL),
    ];
    for (kind, category, code) in cases {
        let v = classify(&Failure::Network(kind));
        assert_eq!(
            v,
            Verdict {
                action: Defer,
                category,
                status: code
            },
            "{kind:?}"
        );
        assert!(v.status.is_transient(), "{kind:?}");
    }
}

#[test]
fn odd_replies() {
    // 421 at the greeting, with and without words.
    let v = verdict("421 mx.example.com Service not available, closing transmission channel");
    assert_eq!((v.action, v.category), (Defer, Capacity));
    assert_eq!(verdict("421").action, Defer);
    // A 5xx with no text at all: by the code alone.
    let v = verdict("500");
    assert_eq!((v.action, v.category), (Reject, Protocol));
    assert_eq!(v.status.to_string(), "5.5.0");
    let v = verdict("550");
    assert_eq!(
        (v.action, v.category, v.status),
        (Reject, Other, status::PERMANENT)
    );
    assert_eq!(verdict("552").category, Full);
    // An enhanced code of the wrong class: subject and detail are
    // believed, the class never.
    let v = verdict("550 4.1.1 odd");
    assert_eq!((v.action, v.category), (Reject, Recipient));
    assert_eq!(v.status.to_string(), "5.1.1");
    let v = verdict("451 5.7.1 odd");
    assert_eq!((v.action, v.category), (Defer, Policy));
    assert_eq!(v.status.to_string(), "4.7.1");
    // A success code inside a failure is ignored.
    let v = verdict("550 2.1.5 ok?");
    assert_eq!((v.category, v.status), (Other, status::PERMANENT));
    // Garbage.
    let v = verdict("554 \u{1}\u{7f}%%%%%%%% ]]]] 5.x.y ..");
    assert_eq!(
        (v.action, v.category, v.status),
        (Reject, Other, status::PERMANENT)
    );
    // A code that is no failure at all: the server is confused.
    for code in [250, 354, 399, 600, 0] {
        let v = classify(&Failure::from_reply(code, "5.1.1 user unknown"));
        assert_eq!(
            (v.action, v.category, v.status),
            (Defer, Protocol, status::PROTOCOL),
            "{code}"
        );
    }
    // Case does not matter; a keyword must start a word.
    assert_eq!(verdict("550 MAILBOX FULL").category, Full);
    assert_eq!(verdict("554 message garbled").category, Other);
    assert_eq!(verdict("554 listed in spam-RBL").category, Blocklist);
}

#[test]
fn long_text_is_searched_only_at_its_start() {
    // Far past the scan limit, a keyword is not seen.
    let late = format!("451 {} greylisted", "x".repeat(100_000));
    assert_eq!(
        classify(&Failure::from_reply(451, &late[4..])).category,
        Other
    );
    let early = format!("mailbox full {}", "y ".repeat(50_000));
    let v = classify(&Failure::from_reply(552, &early));
    assert_eq!((v.action, v.category), (Defer, Full));
    // The limit cut inside a multi-byte character.
    let wide = format!("{}é {}", "a".repeat(SCAN_LIMIT - 1), "user unknown");
    assert_eq!(classify(&Failure::from_reply(550, &wide)).category, Other);
}

#[test]
fn non_ascii_text() {
    let v = verdict("550 5.1.1 Benutzer unbekannt – Postfach existiert nicht");
    assert_eq!((v.action, v.category), (Reject, Recipient));
    let v = verdict("552 5.2.2 Почтовый ящик переполнен");
    assert_eq!((v.action, v.category), (Defer, Full));
    let v = verdict("550 邮箱不存在 user unknown ✉");
    assert_eq!((v.action, v.category), (Reject, Recipient));
    let v = verdict("451 ÜBERLASTET, Greylisting aktiv");
    assert_eq!((v.action, v.category), (Defer, Greylist));
}

#[test]
fn category_words() {
    let all = [
        Network, Dns, Tls, Recipient, Full, Blocklist, Greylist, Spam, Virus, Dmarc, Policy,
        Capacity, Size, Protocol, Other,
    ];
    let words: std::collections::HashSet<String> = all.iter().map(|c| c.to_string()).collect();
    assert_eq!(words.len(), all.len());
    for w in &words {
        assert!(w.bytes().all(|b| b.is_ascii_lowercase()), "{w}");
    }
    assert_eq!(Defer.to_string(), "defer");
    assert_eq!(Reject.to_string(), "reject");
}

#[test]
fn keyword_lists_are_lower_case() {
    let lists = BY_TEXT.iter().map(|(k, _)| *k).chain([DEFER_HINTS]);
    for list in lists {
        for k in list {
            assert_eq!(*k, k.to_ascii_lowercase(), "{k}");
            assert!(!k.is_empty());
        }
    }
}
