#!/usr/bin/perl
# Mail::SRS (Debian libmail-srs-perl; Mail::SRS::Guarded) as an SRS peer
# for lib/tests/srs_interop.rs, at a time given on the command line.
#
#   perl srs-mail-srs.pl UNIXTIME SRSDOMAIN SEPARATOR MAXAGE SECRET...
#
# Reads requests from stdin, one a line: `f ADDRESS` (forward into
# SRSDOMAIN) or `r ADDRESS` (reverse); answers each with one line, `ok
# RESULT` or `err MESSAGE`. Warnings (a case-smashed hash) go to stderr.
use strict;
use warnings;

my $now;
# Mail::SRS reads the clock with time(); the override must exist before
# the module is compiled, hence BEGIN and the `use` after it.
BEGIN {
    $now = shift @ARGV;
    die "usage: $0 UNIXTIME SRSDOMAIN SEPARATOR MAXAGE SECRET...\n"
        unless defined $now && $now =~ /^\d+$/;
    *CORE::GLOBAL::time = sub () { $now };
}
use Mail::SRS;

my ($domain, $separator, $max_age, @secrets) = @ARGV;
die "usage: $0 UNIXTIME SRSDOMAIN SEPARATOR MAXAGE SECRET...\n" unless @secrets;
my $srs = Mail::SRS->new(
    Secret    => \@secrets,
    MaxAge    => $max_age,
    Separator => $separator,
);
$| = 1;
while (my $line = <STDIN>) {
    chomp $line;
    my ($op, $address) = split / /, $line, 2;
    my $out = eval {
        $op eq 'f' ? $srs->forward($address, $domain) : $srs->reverse($address);
    };
    if ($@) {
        (my $e = $@) =~ s/\n.*//s;
        print "err $e\n";
    } else {
        print "ok $out\n";
    }
}
