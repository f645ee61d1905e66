/* version — the one place the release number lives (ping, smsgwctl). */
#ifndef SMSGW_VERSION_H
#define SMSGW_VERSION_H

#define SMSGW_VERSION "0.1.0"

#endif
