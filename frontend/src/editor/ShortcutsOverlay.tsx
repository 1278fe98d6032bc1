// The `?` overlay: every keyboard shortcut of the registry, with what it does (Escape closes it).
import { Modal } from "./dialogs";
import { keyLabel, SHORTCUTS } from "./shortcuts";

export function ShortcutsOverlay({ onClose }: { onClose(): void }) {
  return (
    <Modal title="Keyboard shortcuts" onClose={onClose}>
      <table className="nf-shortcuts" data-testid="shortcuts">
        <tbody>
          {SHORTCUTS.map((shortcut) => (
            <tr key={shortcut.action}>
              <td className="nf-shortcut-keys">
                {shortcut.keys.map((spec, index) => (
                  <span key={spec}>{index > 0 && " or "}<kbd>{keyLabel(spec)}</kbd></span>
                ))}
              </td>
              <td>{shortcut.description}</td>
            </tr>
          ))}
          <tr>
            <td className="nf-shortcut-keys"><kbd>Shift</kbd>-drag</td>
            <td>Select the nodes in a box</td>
          </tr>
        </tbody>
      </table>
      <div className="nf-form-actions">
        <button type="button" onClick={onClose}>Close</button>
      </div>
    </Modal>
  );
}
