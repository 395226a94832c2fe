/**
 * The one script Gatehouse pages run: on a passkey page, the button hands the options the server put in the page
 * (a JSON data block) to navigator.credentials.get or .create, and posts the answer, base64url-encoded as WebAuthn's
 * JSON forms, in the form's `credential` field. It is static text, so the page's CSP allows it by hash; pages without
 * a passkey button run no script at all.
 */
export const PASSKEY_SCRIPT = `(() => {
  const form = document.getElementById('passkey-form');
  const button = document.getElementById('passkey-button');
  const status = document.getElementById('passkey-status');
  const options = JSON.parse(document.getElementById('passkey-options').textContent);
  const create = form.dataset.passkey === 'create';
  const bytes = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
  const text = (buffer) => {
    let s = '';
    for (const b of new Uint8Array(buffer)) s += String.fromCharCode(b);
    return btoa(s).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
  };
  const ids = (list) => (list || []).map((c) => ({ ...c, id: bytes(c.id) }));
  button.addEventListener('click', async () => {
    status.textContent = '';
    button.disabled = true;
    try {
      const publicKey = { ...options, challenge: bytes(options.challenge) };
      let credential;
      if (create) {
        publicKey.user = { ...options.user, id: bytes(options.user.id) };
        publicKey.excludeCredentials = ids(options.excludeCredentials);
        credential = await navigator.credentials.create({ publicKey });
      } else {
        publicKey.allowCredentials = ids(options.allowCredentials);
        credential = await navigator.credentials.get({ publicKey });
      }
      const r = credential.response;
      const response = create
        ? {
            clientDataJSON: text(r.clientDataJSON),
            attestationObject: text(r.attestationObject),
            transports: r.getTransports ? r.getTransports() : [],
          }
        : {
            clientDataJSON: text(r.clientDataJSON),
            authenticatorData: text(r.authenticatorData),
            signature: text(r.signature),
            userHandle: r.userHandle ? text(r.userHandle) : undefined,
          };
      form.elements.credential.value = JSON.stringify({
        id: credential.id,
        rawId: text(credential.rawId),
        type: credential.type,
        response,
        authenticatorAttachment: credential.authenticatorAttachment || undefined,
        clientExtensionResults: credential.getClientExtensionResults(),
      });
      form.submit();
    } catch (err) {
      status.textContent = 'No passkey was used (' + ((err && err.name) || 'error') + '). Try again, or use another way.';
      button.disabled = false;
    }
  });
})();`;
